#include "error.h"

#define RTMP_X_MSG(name, msg) msg,
#define RTMP_X_NAME(name, msg) #name,
static const char *const messages[] = { RTMP_ERRORS(RTMP_X_MSG) };
static const char *const names[] = { RTMP_ERRORS(RTMP_X_NAME) };

static int index_of(int err)
{
    int i = err - RTMP_ERR_BASE_ - 1;
    if (i < 0 || i >= (int)(sizeof names / sizeof names[0]))
        return -1;
    return i;
}

const char *rtmp_strerror(int err)
{
    int i = index_of(err);
    return i < 0 ? "unknown error" : messages[i];
}

const char *rtmp_errname(int err)
{
    int i = index_of(err);
    return i < 0 ? "UNKNOWN" : names[i];
}
