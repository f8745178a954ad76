/* A directory only this user may write to (see privdir.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "privdir.h"

void lm_require_private_dir(const char *dir, const char *what)
{
    struct stat sb;

    /* another user's directory, or one others may write to (a predictable
     * name in /tmp made first by someone else, a mode 0777 spool), can hold
     * files this program would trust: refuse it */
    if (lstat(dir, &sb) != 0)
        lm_fatal(LM_EXIT_IO, "could not stat %s \"%s\": %s", what, dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode) || sb.st_uid != geteuid() || (sb.st_mode & 022) != 0) {
        lm_error("%s \"%s\" is not a directory of this user that only it may write to", what, dir);
        if (S_ISDIR(sb.st_mode) && sb.st_uid != geteuid())
            lm_detail("It belongs to user id %u.", (unsigned)sb.st_uid);
        else if (S_ISDIR(sb.st_mode))
            lm_detail("Its mode is %04o.", (unsigned)(sb.st_mode & 07777));
        lm_hint("Use a directory of your own that only you may write to (chmod 700), or remove it.");
        exit(LM_EXIT_IO);
    }
}
