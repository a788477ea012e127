#include "sharedobj.h"
#include "error.h"

#include <string.h>

int rtmp_so_read_string(const uint8_t *p, size_t len, size_t *off, const char **s, size_t *slen)
{
    size_t at = *off;
    if (len - at < 2)
        return RTMP_ERR_SO_TRUNCATED;
    size_t n = rtmp_get_be16(p + at);
    if (len - at - 2 < n)
        return RTMP_ERR_SO_TRUNCATED;
    *s = (const char *)p + at + 2;
    *slen = n;
    *off = at + 2 + n;
    return 0;
}

int rtmp_so_parse_header(const uint8_t *p, size_t len, int amf3, rtmp_so_header *h)
{
    size_t off = 0;
    memset(h, 0, sizeof *h);
    h->encoding = -1;
    if (amf3) {
        if (len < 1)
            return RTMP_ERR_SO_TRUNCATED;
        h->encoding = p[0];
        if (p[0] != 0)
            return RTMP_ERR_SO_ENCODING;
        off = 1;
    }
    int rc = rtmp_so_read_string(p, len, &off, &h->name, &h->name_len);
    if (rc < 0)
        return rc;
    if (len - off < 12)
        return RTMP_ERR_SO_TRUNCATED;
    h->version = rtmp_get_be32(p + off);
    h->flags = rtmp_get_be32(p + off + 4);
    h->reserved = rtmp_get_be32(p + off + 8);
    return (int)(off + 12);
}

int rtmp_so_next_event(const uint8_t *p, size_t len, size_t *off, rtmp_so_event *ev)
{
    size_t at = *off;
    if (at >= len)
        return 0;
    if (len - at < 5)
        return RTMP_ERR_SO_TRUNCATED;
    uint32_t n = rtmp_get_be32(p + at + 1);
    if (len - at - 5 < n)
        return RTMP_ERR_SO_TRUNCATED;
    ev->type = p[at];
    ev->len = n;
    ev->data = p + at + 5;
    *off = at + 5 + n;
    return 1;
}

static const char *const so_names[] = {
    NULL, "use", "release", "request_change", "change", "success", "send_message",
    "status", "clear", "remove", "request_remove", "use_success",
};

const char *rtmp_so_event_name(unsigned type)
{
    return type < sizeof so_names / sizeof so_names[0] ? so_names[type] : NULL;
}

int rtmp_so_event_type(const char *name)
{
    for (size_t i = 1; i < sizeof so_names / sizeof so_names[0]; i++)
        if (strcmp(so_names[i], name) == 0)
            return (int)i;
    return -1;
}

int rtmp_so_put_string(rtmp_buf **out, const char *s, size_t len)
{
    if (len > 0xFFFF)
        return RTMP_ERR_INVAL;
    uint8_t *w = rtmp_buf_grow(out, 2 + len);
    if (!w)
        return RTMP_ERR_NOMEM;
    rtmp_put_be16(w, (uint32_t)len);
    if (len)
        memcpy(w + 2, s, len);
    (*out)->len += 2 + len;
    return 0;
}

int rtmp_so_put_header(rtmp_buf **out, int amf3, const char *name, size_t name_len,
                       uint32_t version, uint32_t flags, uint32_t reserved)
{
    if (name_len > 0xFFFF)
        return RTMP_ERR_INVAL;
    static const uint8_t encoding0 = 0;
    if (amf3 && rtmp_buf_append(out, &encoding0, 1) < 0)
        return RTMP_ERR_NOMEM;
    int rc = rtmp_so_put_string(out, name, name_len);
    if (rc < 0)
        return rc;
    uint8_t *w = rtmp_buf_grow(out, 12);
    if (!w)
        return RTMP_ERR_NOMEM;
    rtmp_put_be32(w, version);
    rtmp_put_be32(w + 4, flags);
    rtmp_put_be32(w + 8, reserved);
    (*out)->len += 12;
    return 0;
}

int rtmp_so_put_event(rtmp_buf **out, uint8_t type, const uint8_t *data, size_t len)
{
    if (len > 0xFFFFFFFFu)
        return RTMP_ERR_INVAL;
    uint8_t *w = rtmp_buf_grow(out, 5 + len);
    if (!w)
        return RTMP_ERR_NOMEM;
    w[0] = type;
    rtmp_put_be32(w + 1, (uint32_t)len);
    if (len)
        memcpy(w + 5, data, len);
    (*out)->len += 5 + len;
    return 0;
}
