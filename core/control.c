#include "control.h"
#include "error.h"

#include <string.h>

int rtmp_control_parse(const rtmp_msg_hdr *h, const uint8_t *p, rtmp_control *out)
{
    uint32_t n = h->length;
    memset(out, 0, sizeof *out);
    out->type = h->type;
    out->limit = -1;
    switch (h->type) {
    case RTMP_MSG_SET_CHUNK_SIZE:
    case RTMP_MSG_ABORT:
    case RTMP_MSG_ACK:
    case RTMP_MSG_WINDOW_ACK_SIZE:
        if (n < 4)
            return RTMP_ERR_CONTROL;
        out->value = rtmp_get_be32(p);
        if (h->type == RTMP_MSG_SET_CHUNK_SIZE) {
            out->high_bit = (out->value >> 31) & 1;
            out->value &= 0x7FFFFFFF;
        }
        return 0;
    case RTMP_MSG_SET_PEER_BANDWIDTH:
        if (n < 4)
            return RTMP_ERR_CONTROL;
        out->value = rtmp_get_be32(p);
        out->limit = n >= 5 ? p[4] : -1;
        return 0;
    case RTMP_MSG_USER_CONTROL:
        if (n < 2)
            return RTMP_ERR_CONTROL;
        out->event = (uint16_t)rtmp_get_be16(p);
        if (n >= 6) {
            out->value = rtmp_get_be32(p + 2);
            out->nfields = 1;
        }
        if (n >= 10) {
            out->value2 = rtmp_get_be32(p + 6);
            out->nfields = 2;
        }
        switch (out->event) {
        case RTMP_UC_SET_BUFFER_LENGTH:
            return out->nfields == 2 ? 0 : RTMP_ERR_CONTROL;
        case RTMP_UC_STREAM_BEGIN: case RTMP_UC_STREAM_EOF: case RTMP_UC_STREAM_DRY:
        case RTMP_UC_STREAM_IS_RECORDED: case RTMP_UC_PING_REQUEST: case RTMP_UC_PING_RESPONSE:
        case RTMP_UC_BUFFER_EMPTY: case RTMP_UC_BUFFER_READY:
            return out->nfields >= 1 ? 0 : RTMP_ERR_CONTROL;
        default:
            return 0;
        }
    default:
        return RTMP_ERR_INVAL;
    }
}

static const struct { unsigned event; const char *name; } uc_names[] = {
    { RTMP_UC_STREAM_BEGIN, "stream_begin" },
    { RTMP_UC_STREAM_EOF, "stream_eof" },
    { RTMP_UC_STREAM_DRY, "stream_dry" },
    { RTMP_UC_SET_BUFFER_LENGTH, "set_buffer_length" },
    { RTMP_UC_STREAM_IS_RECORDED, "stream_is_recorded" },
    { RTMP_UC_PING_REQUEST, "ping_request" },
    { RTMP_UC_PING_RESPONSE, "ping_response" },
    { RTMP_UC_SWF_VERIFY_REQUEST, "swf_verify_request" },
    { RTMP_UC_SWF_VERIFY_RESPONSE, "swf_verify_response" },
    { RTMP_UC_BUFFER_EMPTY, "buffer_empty" },
    { RTMP_UC_BUFFER_READY, "buffer_ready" },
};

const char *rtmp_uc_name(unsigned event)
{
    for (size_t i = 0; i < sizeof uc_names / sizeof uc_names[0]; i++)
        if (uc_names[i].event == event)
            return uc_names[i].name;
    return NULL;
}

int rtmp_uc_event(const char *name)
{
    for (size_t i = 0; i < sizeof uc_names / sizeof uc_names[0]; i++)
        if (strcmp(uc_names[i].name, name) == 0)
            return (int)uc_names[i].event;
    return -1;
}

const char *rtmp_msg_type_name(unsigned type)
{
    switch (type) {
    case RTMP_MSG_SET_CHUNK_SIZE: return "set_chunk_size";
    case RTMP_MSG_ABORT: return "abort";
    case RTMP_MSG_ACK: return "ack";
    case RTMP_MSG_USER_CONTROL: return "user_control";
    case RTMP_MSG_WINDOW_ACK_SIZE: return "window_ack_size";
    case RTMP_MSG_SET_PEER_BANDWIDTH: return "set_peer_bandwidth";
    case RTMP_MSG_AUDIO: return "audio";
    case RTMP_MSG_VIDEO: return "video";
    case RTMP_MSG_AMF3_DATA: return "data3";
    case RTMP_MSG_AMF3_SHARED_OBJECT: return "shared_object3";
    case RTMP_MSG_AMF3_COMMAND: return "command3";
    case RTMP_MSG_AMF0_DATA: return "data";
    case RTMP_MSG_AMF0_SHARED_OBJECT: return "shared_object";
    case RTMP_MSG_AMF0_COMMAND: return "command";
    case RTMP_MSG_AGGREGATE: return "aggregate";
    default: return "unknown";
    }
}

int rtmp_control_u32(uint8_t *p, uint32_t v)
{
    rtmp_put_be32(p, v);
    return 4;
}

int rtmp_control_peer_bandwidth(uint8_t *p, uint32_t window, int limit)
{
    rtmp_put_be32(p, window);
    if (limit < 0)
        return 4;
    p[4] = (uint8_t)limit;
    return 5;
}

int rtmp_control_user(uint8_t *p, uint16_t event, int nfields, uint32_t v1, uint32_t v2)
{
    rtmp_put_be16(p, event);
    if (nfields >= 1)
        rtmp_put_be32(p + 2, v1);
    if (nfields >= 2)
        rtmp_put_be32(p + 6, v2);
    return 2 + 4 * (nfields > 2 ? 2 : nfields);
}
