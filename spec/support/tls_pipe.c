/*
 * tls_pipe.c: a one-connection TLS pipe that asks its TLS peer for new keys
 * (TLS 1.3 KeyUpdate, update_requested) every INTERVAL seconds while the
 * bytes flow, for spec/interop/tls_spec.lua (compiled there with cc).
 *
 *   tls_pipe client PORT TARGET INTERVAL
 *       accept one plain connection on 127.0.0.1:PORT, relay it over TLS
 *       to 127.0.0.1:TARGET (no verification)
 *   tls_pipe server PORT TARGET INTERVAL CERT KEY
 *       accept one TLS connection on 127.0.0.1:PORT, relay it in the clear
 *       to 127.0.0.1:TARGET
 *
 * At the end (either side closed) it prints on stdout
 *   key_updates sent=N received=M bytes_tls_in=A bytes_tls_out=B
 * where received counts the KeyUpdate messages the TLS peer sent us (its
 * answers: a peer that keeps writing must answer each request once).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static unsigned long sent, received;

static void on_msg(int write_p, int version, int type, const void *buf, size_t len, SSL *ssl, void *arg)
{
    (void)version, (void)ssl, (void)arg;
    if (type == SSL3_RT_HANDSHAKE && len > 0 && ((const unsigned char *)buf)[0] == SSL3_MT_KEY_UPDATE) {
        if (write_p)
            sent++;
        else
            received++;
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int tcp_listen(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 1) < 0) {
        perror("listen");
        exit(2);
    }
    return fd;
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("connect");
        exit(2);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 5 || (strcmp(argv[1], "client") && strcmp(argv[1], "server")) ||
        (!strcmp(argv[1], "server") && argc < 7)) {
        fprintf(stderr, "usage: tls_pipe client|server PORT TARGET INTERVAL [CERT KEY]\n");
        return 2;
    }
    int server = !strcmp(argv[1], "server");
    int lfd = tcp_listen(atoi(argv[2]));
    double interval = atof(argv[4]);
    printf("listening\n");
    fflush(stdout);
    int in = accept(lfd, NULL, NULL);
    int out = tcp_connect(atoi(argv[3]));
    int tls_fd = server ? in : out, plain_fd = server ? out : in;

    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY); /* a record with no data (a ticket) must not block */
    if (server && (SSL_CTX_use_certificate_chain_file(ctx, argv[5]) != 1 ||
                   SSL_CTX_use_PrivateKey_file(ctx, argv[6], SSL_FILETYPE_PEM) != 1)) {
        ERR_print_errors_fp(stderr);
        return 2;
    }
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, tls_fd);
    SSL_set_msg_callback(ssl, on_msg);
    if (!server)
        SSL_set_tlsext_host_name(ssl, "localhost");
    if ((server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    unsigned long long tls_in = 0, tls_out = 0;
    char buf[65536];
    double next = now() + interval;
    for (;;) {
        struct pollfd p[2] = { { tls_fd, POLLIN, 0 }, { plain_fd, POLLIN, 0 } };
        int wait_ms = (int)((next - now()) * 1000);
        if (SSL_pending(ssl) > 0)
            wait_ms = 0;
        poll(p, 2, wait_ms < 0 ? 0 : wait_ms);
        if (now() >= next) { /* ask for new keys; send ours now */
            SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED);
            if (SSL_do_handshake(ssl) != 1)
                break;
            next = now() + interval;
        }
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) || SSL_pending(ssl) > 0) {
            int n = SSL_read(ssl, buf, sizeof buf);
            if (n <= 0 && SSL_get_error(ssl, n) == SSL_ERROR_WANT_READ)
                continue; /* a handshake message (ticket, KeyUpdate), no data */
            if (n <= 0)
                break;
            tls_in += (unsigned)n;
            if (write(plain_fd, buf, (size_t)n) != n)
                break;
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(plain_fd, buf, sizeof buf);
            if (n <= 0)
                break;
            if (SSL_write(ssl, buf, (int)n) != n)
                break;
            tls_out += (unsigned long long)n;
        }
    }
    printf("key_updates sent=%lu received=%lu bytes_tls_in=%llu bytes_tls_out=%llu\n", sent, received, tls_in,
           tls_out);
    fflush(stdout);
    SSL_shutdown(ssl);
    return 0;
}
