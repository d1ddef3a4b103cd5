/* modbus_rtt: the libmodbus baseline for the launcher link's round trips (client), or a bare libmodbus
 * server to measure the transport floor (--serve).
 *
 * Client: modbus_rtt (--rtu PATH [--baud B] | --tcp IPV4:PORT) [--id N] [-n N] [--ops status,write]
 *                    [--timeout-ms MS]
 *   times N exchanges of each requested operation, the same requests LauncherLink makes:
 *     status  FC4, 24 input registers from 0 (a whole launcher status)
 *     write   FC16, the 7-register fire block from 3 (FIRE_TRACK, FIRE_AZ_CDEG, FIRE_EL_CDEG, FIRE_RANGE_M,
 *             FIRE_TGO_CS, FIRE_SEQ, FIRE_CHECK; register map 2, docs/PROTOCOLS.md section 4): a fire
 *             command whole and with a good check word, but FIRE_SEQ = 0. Zero is never a fire: the board
 *             takes the block as a fire command and refuses it (ZERO_SEQ) before it looks at its state,
 *             so this write cannot launch in any state. FIRE_TRACK..FIRE_TGO_CS are read first (FC3) and
 *             written back unchanged.
 *   With both operations they alternate (status, write, status, write ...), as a host loop does.
 *   Each exchange is timed with clock_gettime(CLOCK_MONOTONIC) from just before the request is sent to
 *   just after the whole answer is parsed. Prints one JSON object on stdout:
 *     {"library": "libmodbus X.Y.Z", "status_regs": [24 values of the last read],
 *      "write_values": [the 7 registers written], "status_ns": [...], "write_ns": [...]}
 *   Any failed exchange is fatal (message on stderr, exit 2): a baseline with holes is no baseline.
 *
 * modbus_rtt --version prints the libmodbus version loaded at run time.
 *
 * Server: modbus_rtt --serve (--rtu PATH [--baud B] | --tcp HOST:PORT) [--id N]
 *   answers with libmodbus' own reply code from a plain register table (IDENT_MAGIC and REGMAP_VERSION
 *   in input registers 0 and 1, nothing else of the launcher's behaviour), announces itself as one JSON
 *   line ({"rtu": PATH} or {"tcp": "HOST:PORT"}, "pid"), and runs until SIGTERM or its parent dies.
 *
 * The register map's numbers come from hil/drivers/registers.py (its c_defines(), the names of
 * firmware_stubs/common/hil_registers.h) as -D options: hil.modbus_baseline.build_client passes them.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <modbus/modbus.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if !defined(HIL_IDENT_MAGIC) || !defined(HIL_REGMAP_VERSION) || !defined(HIL_HR_COUNT) || !defined(HIL_IR_COUNT) \
    || !defined(HIL_IR_STATUS_REGS) || !defined(HIL_FIRE_BLOCK) || !defined(HIL_FIRE_BLOCK_REGS) \
    || !defined(HIL_HR_FIRE_SEQ) || !defined(HIL_HR_FIRE_CHECK) || !defined(HIL_IR_IDENT_MAGIC) \
    || !defined(HIL_IR_REGMAP_VERSION)
#error "build with hil.modbus_baseline.build_client: it passes the register map as -D options"
#endif
#define STATUS_REGS HIL_IR_STATUS_REGS
#define WRITE_REGS HIL_FIRE_BLOCK_REGS
#define SEQ_AT (HIL_HR_FIRE_SEQ - HIL_FIRE_BLOCK)  /* FIRE_SEQ's place in the block */
#define CHECK_AT (HIL_HR_FIRE_CHECK - HIL_FIRE_BLOCK)  /* FIRE_CHECK's: the last, over the ones before it */
_Static_assert(CHECK_AT == WRITE_REGS - 1 && SEQ_AT == CHECK_AT - 1, "the fire block ends FIRE_SEQ, FIRE_CHECK");

struct options {
    const char *rtu, *tcp;
    int baud, device_id, n, serve, do_status, do_write, timeout_ms;
};

static void die(const char *what) {
    fprintf(stderr, "modbus_rtt: %s: %s\n", what, modbus_strerror(errno));
    exit(2);
}

/* FIRE_CHECK: CRC-16/MODBUS (reflected 0xA001, init 0xFFFF) over the registers before it, high byte first */
static uint16_t fire_check(const uint16_t *regs, int n) {
    uint16_t crc = 0xFFFF;
    for (int i = 0; i < 2 * n; i++) {
        crc ^= (uint8_t)(i % 2 ? regs[i / 2] : regs[i / 2] >> 8);
        for (int bit = 0; bit < 8; bit++) crc = crc & 1 ? (uint16_t)((crc >> 1) ^ 0xA001) : crc >> 1;
    }
    return crc;
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void usage(void) {
    fprintf(stderr, "usage: modbus_rtt [--serve] (--rtu PATH [--baud B] | --tcp HOST:PORT) [--id N] [-n N]"
                    " [--ops status,write] [--timeout-ms MS]\n");
    exit(64);
}

static struct options parse(int argc, char **argv) {
    struct options o = {NULL, NULL, 115200, 1, 100, 0, 1, 1, 1000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--serve")) { o.serve = 1; continue; }
        if (!strcmp(a, "--version")) {
            /* the library actually loaded, which can differ from the header compiled against */
            printf("libmodbus %u.%u.%u\n", libmodbus_version_major, libmodbus_version_minor,
                   libmodbus_version_micro);
            exit(0);
        }
        if (v == NULL) usage();
        if (!strcmp(a, "--rtu")) o.rtu = v;
        else if (!strcmp(a, "--tcp")) o.tcp = v;
        else if (!strcmp(a, "--baud")) o.baud = atoi(v);
        else if (!strcmp(a, "--id")) o.device_id = atoi(v);
        else if (!strcmp(a, "-n")) o.n = atoi(v);
        else if (!strcmp(a, "--timeout-ms")) o.timeout_ms = atoi(v);
        else if (!strcmp(a, "--ops")) {
            o.do_status = strstr(v, "status") != NULL;
            o.do_write = strstr(v, "write") != NULL;
        } else usage();
        i++;
    }
    if ((o.rtu == NULL) == (o.tcp == NULL) || o.n < 1 || o.baud < 1 || o.timeout_ms < 1
        || o.device_id < 1 || o.device_id > 247 || !(o.do_status || o.do_write))
        usage();
    return o;
}

static modbus_t *open_context(const struct options *o, int *port_out) {
    modbus_t *ctx;
    if (o->rtu) {
        ctx = modbus_new_rtu(o->rtu, o->baud, 'N', 8, 1);
    } else {
        char host[64];
        const char *colon = strrchr(o->tcp, ':');
        size_t len = colon ? (size_t)(colon - o->tcp) : 0;
        if (colon == NULL || len == 0 || len >= sizeof host) usage();
        memcpy(host, o->tcp, len);
        host[len] = '\0';
        *port_out = atoi(colon + 1);
        ctx = modbus_new_tcp(host, *port_out);
    }
    if (ctx == NULL) die("cannot create the libmodbus context");
    if (modbus_set_slave(ctx, o->device_id) == -1) die("device id");
    return ctx;
}

static void print_ns(const char *name, const int64_t *ns, int n) {
    printf(", \"%s\": [", name);
    for (int i = 0; i < n; i++) printf(i ? ",%lld" : "%lld", (long long)ns[i]);
    printf("]");
}

static int client(const struct options *o) {
    int port = 0;
    modbus_t *ctx = open_context(o, &port);
    modbus_set_response_timeout(ctx, (uint32_t)(o->timeout_ms / 1000), (uint32_t)(o->timeout_ms % 1000) * 1000);
    if (modbus_connect(ctx) == -1) die("connect");
    modbus_flush(ctx);  /* a freshly opened pty can hold stale bytes */

    uint16_t status[STATUS_REGS] = {0};
    uint16_t values[WRITE_REGS] = {0};
    int64_t *status_ns = calloc((size_t)o->n, sizeof *status_ns);
    int64_t *write_ns = calloc((size_t)o->n, sizeof *write_ns);
    if (status_ns == NULL || write_ns == NULL) { fprintf(stderr, "modbus_rtt: out of memory\n"); return 2; }
    if (o->do_write && modbus_read_registers(ctx, HIL_FIRE_BLOCK, SEQ_AT, values) != SEQ_AT)
        die("read FIRE_TRACK..FIRE_TGO_CS");
    values[SEQ_AT] = 0;  /* FIRE_SEQ 0: refused (ZERO_SEQ), never a fire */
    values[CHECK_AT] = fire_check(values, CHECK_AT);  /* a good check: the board takes it for a fire command */

    for (int i = 0; i < o->n; i++) {
        if (o->do_status) {
            int64_t t0 = now_ns();
            if (modbus_read_input_registers(ctx, 0, STATUS_REGS, status) != STATUS_REGS) die("status read");
            status_ns[i] = now_ns() - t0;
        }
        if (o->do_write) {
            int64_t t0 = now_ns();
            if (modbus_write_registers(ctx, HIL_FIRE_BLOCK, WRITE_REGS, values) != WRITE_REGS) die("write");
            write_ns[i] = now_ns() - t0;
        }
    }
    modbus_close(ctx);
    modbus_free(ctx);

    printf("{\"library\": \"libmodbus %s\", \"status_regs\": [", LIBMODBUS_VERSION_STRING);
    for (int i = 0; i < STATUS_REGS; i++) printf(i ? ",%u" : "%u", status[i]);
    printf("], \"write_values\": [");
    for (int i = 0; i < WRITE_REGS; i++) printf(i ? ",%u" : "%u", values[i]);
    printf("]");
    print_ns("status_ns", status_ns, o->do_status ? o->n : 0);
    print_ns("write_ns", write_ns, o->do_write ? o->n : 0);
    printf("}\n");
    free(status_ns);
    free(write_ns);
    return 0;
}

static int server(const struct options *o) {
    int port = 0;
    /* die with the parent, as the Python emulators do, so no server outlives a killed run */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) return 0;
    modbus_t *ctx = open_context(o, &port);
    modbus_mapping_t *map = modbus_mapping_new(0, 0, HIL_HR_COUNT, HIL_IR_COUNT);
    if (map == NULL) die("register table");
    map->tab_input_registers[HIL_IR_IDENT_MAGIC] = HIL_IDENT_MAGIC;
    map->tab_input_registers[HIL_IR_REGMAP_VERSION] = HIL_REGMAP_VERSION;
    uint8_t req[MODBUS_MAX_ADU_LENGTH];
    int listener = -1;
    if (o->rtu) {
        if (modbus_connect(ctx) == -1) die("open");
        modbus_flush(ctx);
        printf("{\"rtu\": \"%s\", \"device_id\": %d, \"pid\": %d}\n", o->rtu, o->device_id, (int)getpid());
    } else {
        listener = modbus_tcp_listen(ctx, 1);
        if (listener == -1) die("listen");
        struct sockaddr_in addr;
        socklen_t len = sizeof addr;
        if (getsockname(listener, (struct sockaddr *)&addr, &len) == -1) die("getsockname");
        char host[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &addr.sin_addr, host, sizeof host);
        printf("{\"tcp\": \"%s:%d\", \"device_id\": %d, \"pid\": %d}\n", host, ntohs(addr.sin_port),
               o->device_id, (int)getpid());
    }
    fflush(stdout);
    for (;;) {
        if (listener != -1 && modbus_tcp_accept(ctx, &listener) == -1) die("accept");
        for (;;) {
            int len = modbus_receive(ctx, req);
            if (len > 0) {
                modbus_reply(ctx, req, len, map);
            } else if (len == -1 && listener != -1) {
                break;  /* the client went away: wait for the next one */
            }
            /* RTU: a bad frame or one for another device id is ignored, as a board does */
        }
        modbus_close(ctx);
    }
}

int main(int argc, char **argv) {
    struct options o = parse(argc, argv);
    return o.serve ? server(&o) : client(&o);
}
