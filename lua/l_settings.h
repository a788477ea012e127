/*
 * l_settings.h: the one table of connection and server settings
 * (l_settings.c).  Each setting is described once: its Lua key, type,
 * bounds, one-line help and command-line spelling; its default is the
 * core's (rtmp_conn_config_default), read from the field the setting
 * fills.  A name with a dot is a field of a table setting: "tls.cert"
 * is tls = { cert = ... } in Lua, --tls-cert on the command line.
 * The same description serves
 *   - the Lua parser of rtmp.listen / rtmp.connect / rtmp.session
 *     settings (over rtmp.options, over the defaults);
 *   - the luartmp command line (--idle-timeout SECONDS ..., and --help);
 *   - rtmp.settings, name -> { default, type, min, max, help, cli,
 *     choices }, for Lua code that needs a default (replay).
 */
#ifndef RTMP_L_SETTINGS_H
#define RTMP_L_SETTINGS_H

#include <stddef.h>
#include <stdio.h>

#include "l_rtmp.h"
#include "../core/net.h"

/* The registry key of rtmp.options: settings for every server and
 * connection the script makes (the command line sets them). */
#define RTMP_L_OPTIONS_KEY "rtmp.options"

/* Where servers listen when neither the settings nor rtmp.options say. */
#define RTMP_L_DEFAULT_LISTEN "1935"

/* What a script error in a connection's handler does (setting on_error;
 * l_contain.c acts on it). */
enum { RTMP_L_ON_ERROR_CLOSE, RTMP_L_ON_ERROR_DROP };

/* Setting types. */
enum {
    RTMP_L_SET_SECONDS,  /* a number of seconds */
    RTMP_L_SET_COUNT,    /* a whole number */
    RTMP_L_SET_BYTES,    /* a whole number of bytes (K, M, G on the command line) */
    RTMP_L_SET_BOOLEAN,  /* any value, taken as true or false */
    RTMP_L_SET_CHOICE,   /* one of the strings in choices */
    RTMP_L_SET_INTEGER,  /* any Lua integer (handshake_seed) */
    RTMP_L_SET_AUTOS,    /* a table { ack = false, ... } of RTMP_AUTO_* names */
    RTMP_L_SET_TRACE,    /* true, a path or an open file (l_trace.c) */
    RTMP_L_SET_ADDRESS,  /* an address or an array of them (rtmp.listen) */
    RTMP_L_SET_STRING,   /* a string (a file name, a host name) */
    RTMP_L_SET_STRINGS,  /* strings, repeatable on the command line: an array of them */
};

/* Who reads a setting. */
enum {
    RTMP_L_FOR_CONN,     /* a field of rtmp_conn_config, at offset */
    RTMP_L_FOR_CONTAIN,  /* the binding's containment (l_contain.c) */
    RTMP_L_FOR_OTHER,    /* read where it is used (trace, listen) */
    RTMP_L_FOR_TLS,      /* a field of rtmp_tls_config (core/net.h), at offset */
};

typedef struct rtmp_l_setting {
    const char        *name;    /* the Lua key: "idle_timeout" */
    const char        *cli;     /* "--idle-timeout", or NULL: not on the command line */
    const char        *arg;     /* the value's name in --help: "SECONDS" */
    int                type;    /* RTMP_L_SET_* */
    int                user;    /* RTMP_L_FOR_* */
    size_t             offset;  /* RTMP_L_FOR_CONN: the field in rtmp_conn_config */
    int                ctype;   /* and its C type (l_settings.c) */
    unsigned           flag;    /* a boolean that is one flag of an unsigned field */
    double             min, max;
    const char *const *choices; /* RTMP_L_SET_CHOICE: the names, NULL-terminated */
    const int         *values;  /* and the value each stands for (NULL: its index) */
    const char        *help;
} rtmp_l_setting;

/* The table, and the setting named name (NULL when none). */
const rtmp_l_setting *rtmp_l_settings(size_t *n);
const rtmp_l_setting *rtmp_l_setting_find(const char *name);

/* [-0, +0, e] Read connection settings from the table at t (0: none)
 * into cfg: the core's defaults for role, then rtmp.options, then t.
 * Raises "<name> must be ..." for a bad value. */
void rtmp_l_settings_read(lua_State *L, int t, rtmp_conn_config *cfg, int role);

/* [-0, +0, e] The TLS settings (tls = { cert, key, ca, sni, insecure })
 * of rtmp.options, then of the table at t (0: none), field by field,
 * into *tls (zeroed first).  The strings point into those tables: valid
 * while the tables hold them.  Raises "tls must be a table ...", "unknown
 * TLS setting ...", "tls.cert must be a string ...". */
void rtmp_l_settings_read_tls(lua_State *L, int t, rtmp_tls_config *tls);

/* [-0, +0, e] Only the chunk reader's settings (max_message, ...,
 * ext_ts_fmt3, accept_fresh_fmt) of the table at t over cfg: rtmp.reader. */
void rtmp_l_settings_read_reader(lua_State *L, int t, rtmp_reader_config *cfg);

/* [-0, +0, e] The value at idx as the number setting s takes (seconds,
 * count, bytes), checked against its bounds; raises "<name> must be ...". */
double rtmp_l_setting_number(lua_State *L, const rtmp_l_setting *s, int idx);

/* [-0, +0, e] Number setting name (one no core field holds: http_timeout,
 * ...): the value at idx when not nil, else rtmp.options', else its
 * default; checked against its bounds ("<name> must be ..."). */
double rtmp_l_setting_get(lua_State *L, int idx, const char *name);

/* [-0, +0, e] The value at idx as one of choice setting s's names: the
 * value it stands for; raises "<name> must be ...". */
int rtmp_l_setting_choice(lua_State *L, const rtmp_l_setting *s, int idx);

/* The name choice setting s gives value (the first name when none). */
const char *rtmp_l_setting_choice_name(const rtmp_l_setting *s, int value);

/* ---- the command line (luartmp.c) ---- */

/* The setting spelled opt ("--idle-timeout") on the command line, or NULL. */
const rtmp_l_setting *rtmp_l_setting_cli(const char *opt);

/* Whether s is a flag on the command line (a boolean: no value). */
int rtmp_l_setting_is_flag(const rtmp_l_setting *s);

/* Check text as a value of s on the command line: 0, or -1 after writing
 * what s wants ("seconds >= 0", "close or drop") into want. */
int rtmp_l_setting_parse(const rtmp_l_setting *s, const char *text, char *want, size_t wantlen);

/* [-0, +0, m] Set field s->name of the table at t to text as s's value
 * (text passed rtmp_l_setting_parse; NULL for a flag: true); a dotted
 * name sets a field of the table under its first part (made if
 * missing): "tls.cert" sets t.tls.cert. */
void rtmp_l_setting_set(lua_State *L, int t, const rtmp_l_setting *s, const char *text);

/* A byte count with an optional K, M or G suffix (powers of 1024), up to
 * 2^53, into *out: 0, or -1 when text is not one. */
int rtmp_l_parse_bytes(const char *text, double *out);

/* Write the --help lines of the settings with a command-line spelling,
 * each with its default, indented as luartmp's other options (column
 * col for the help text). */
void rtmp_l_settings_help(FILE *f, int col);

#endif
