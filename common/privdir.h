/* Directories whose contents a program trusts (a spool whose segments it
 * applies, a work directory whose schema dump pg_restore runs, lm-migrate's
 * state) must be this user's alone. */
#ifndef LM_PRIVDIR_H
#define LM_PRIVDIR_H

/* Exit with LM_EXIT_IO, naming dir and what it is ("spool directory"),
 * unless dir is a directory (not a symbolic link) owned by the effective
 * user that neither group nor others may write to. */
void lm_require_private_dir(const char *dir, const char *what);

#endif
