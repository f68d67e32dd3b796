/*
 * main.c - kefu-api: the FastCGI application.
 *
 * Serves FastCGI either on standard input (spawned by lighttpd, spawn-fcgi
 * or mod_fcgid) or on its own socket (--listen PATH | :PORT | HOST:PORT).
 * [Api] Workers threads accept on the one socket (Linux wakes one of them
 * per connection, no lock needed); each has its own Redis and MySQL
 * connections.  SIGTERM, SIGINT or SIGHUP: stop accepting, finish the
 * requests in hand, exit 0.
 */
#include "kf_compat.h"

#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "app.h"
#include "kf_buf.h"
#include "kf_config.h"
#include "kf_key.h"
#include "kf_log.h"
#include "kf_mem.h"
#include "reply.h"
#include "request.h"
#include "router.h"
#include "stats.h"

#define DEFAULT_CONFIG "/etc/kefu/kefu.ini"
#define LISTEN_BACKLOG 1024

static volatile sig_atomic_t stopping;
static int listen_fd = -1;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
	/* wake every thread blocked in accept() */
	if (listen_fd >= 0)
		shutdown(listen_fd, SHUT_RDWR);
}

static long long now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Read the declared body into req->body.  -1 when the client sent less. */
static int read_body(FCGX_Request *r, struct kf_req *req)
{
	size_t want = (size_t)req->content_length;

	kf_buf_grow(&req->body, want);
	while (req->body.len < want) {
		int n = FCGX_GetStr(req->body.data + req->body.len, (int)(want - req->body.len),
				    r->in);

		if (n <= 0)
			return -1;
		req->body.len += (size_t)n;
	}
	req->body.data[req->body.len] = '\0';
	return 0;
}

static void serve_one(struct kf_worker *w, FCGX_Request *r)
{
	struct kf_req req;
	struct kf_reply rep;
	struct kf_buf out = KF_BUF_INIT;
	long long start = now_usec();

	kf_req_init(&req, r->envp, w->api->trusted);
	kf_reply_init(&rep);
	if (!kf_app_refuse_body(w, &req, &rep)) {
		if (read_body(r, &req) != 0)
			kf_reply_error(&rep, 400, "request body shorter than its Content-Length");
		else
			kf_app_handle(w, &req, &rep);
	}
	kf_reply_render(&rep, &out);
	if (FCGX_PutStr(out.data, (int)out.len, r->out) < 0)
		kf_debug("client went away before the reply was written");
	kf_app_trace(&req, &rep, now_usec() - start);
	kf_stats_record(req.route, rep.status, now_usec() - start);
	kf_buf_release(&out);
	kf_reply_release(&rep);
	kf_req_release(&req);
}

static void *worker_main(void *arg)
{
	struct kf_worker *w = arg;
	FCGX_Request r;

	if (FCGX_InitRequest(&r, listen_fd, 0) != 0) {
		kf_err("unable to set up a FastCGI request");
		return NULL;
	}
	while (!stopping) {
		int rc;

		rc = stopping ? -1 : FCGX_Accept_r(&r);
		if (rc < 0)
			break;
		serve_one(w, &r);
		FCGX_Finish_r(&r);
	}
	FCGX_Free(&r, 1);
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kefu-api [--config FILE] [--listen PATH|:PORT|HOST:PORT] [--workers N] [--check]\n"
		"       kefu-api --routes\n"
		"  --config FILE   the INI file (default: $KEFU_CONFIG, else " DEFAULT_CONFIG ")\n"
		"  --listen ADDR   serve FastCGI on this socket instead of standard input\n"
		"  --workers N     worker threads (default: [Api] Workers)\n"
		"  --check         validate the configuration and exit\n"
		"  --routes        print the route table as JSON and exit\n");
}

static int install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
	    sigaction(SIGHUP, &sa, NULL) != 0)
		return -1;
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL);
}

int main(int argc, char **argv)
{
	const char *config_path = getenv("KEFU_CONFIG");
	const char *listen_addr = NULL;
	long workers = 0;
	bool check_only = false;
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg = NULL;
	struct kf_api *api = NULL;
	struct kf_worker **ws = NULL;
	pthread_t *threads = NULL;
	long started = 0;
	int status = 1;

	kf_log_set_ident("kefu-api");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config_path = argv[++i];
		} else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
			listen_addr = argv[++i];
		} else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
			char *end;

			workers = strtol(argv[++i], &end, 10);
			if (*end || workers < 1 || workers > 256) {
				fprintf(stderr, "kefu-api: --workers: expected 1..256, got '%s'\n",
					argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--check") == 0) {
			check_only = true;
		} else if (strcmp(argv[i], "--routes") == 0) {
			struct kf_buf routes = KF_BUF_INIT;

			kf_router_json(&routes);
			printf("%s\n", kf_buf_str(&routes));
			kf_buf_release(&routes);
			return 0;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "kefu-api: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (!config_path || !*config_path)
		config_path = DEFAULT_CONFIG;
	cfg = kf_config_load(config_path, &err);
	if (!cfg) {
		fprintf(stderr, "kefu-api: configuration refused:\n%s", kf_buf_str(&err));
		goto out;
	}
	api = kf_api_new(cfg, &err);
	if (!api) {
		fprintf(stderr, "kefu-api: configuration refused:\n%s", kf_buf_str(&err));
		goto out;
	}
	if (check_only) {
		printf("%s: ok\n", config_path);
		status = 0;
		goto out;
	}
	kf_log_set_level((enum kf_log_level)kf_log_level_parse(kf_config_str(cfg, "Log", "Level")));
	if (kf_log_set_file(kf_config_str(cfg, "Log", "File")) != 0) {
		fprintf(stderr, "kefu-api: [Log] File: unable to open '%s': %s\n",
			kf_config_str(cfg, "Log", "File"), strerror(errno));
		goto out;
	}
	if (kf_key_init() != 0) {
		kf_err("unable to initialise libsodium");
		goto out;
	}
	if (!workers)
		workers = (long)kf_config_int(cfg, "Api", "Workers");
	if (!listen_addr && *kf_config_str(cfg, "Api", "Listen"))
		listen_addr = kf_config_str(cfg, "Api", "Listen");
	if (install_signals() != 0 || FCGX_Init() != 0) {
		kf_err("unable to initialise FastCGI");
		goto out;
	}
	if (listen_addr) {
		listen_fd = FCGX_OpenSocket(listen_addr, LISTEN_BACKLOG);
		if (listen_fd < 0) {
			kf_err("unable to listen on '%s': %s", listen_addr, strerror(errno));
			goto out;
		}
		/* the web server may run as another user (Apache: www-data) */
		if (listen_addr[0] == '/' && chmod(listen_addr, 0666) != 0)
			kf_warn("unable to chmod '%s': %s", listen_addr, strerror(errno));
	} else {
		if (FCGX_IsCGI()) {
			fprintf(stderr, "kefu-api: standard input is not a FastCGI socket: "
					"run it from a web server or give --listen\n");
			goto out;
		}
		listen_fd = 0;
	}
	kf_info("serving FastCGI on %s with %ld workers (config %s)",
		listen_addr ? listen_addr : "standard input", workers, config_path);
	ws = kf_xcalloc((size_t)workers, sizeof(*ws));
	threads = kf_xcalloc((size_t)workers, sizeof(*threads));
	for (started = 0; started < workers; started++) {
		ws[started] = kf_worker_new(api);
		if (pthread_create(&threads[started], NULL, worker_main, ws[started]) != 0) {
			kf_err("unable to start worker %ld", started);
			kf_worker_free(ws[started]);
			stopping = 1;
			if (listen_fd >= 0)
				shutdown(listen_fd, SHUT_RDWR);
			break;
		}
	}
	status = started == workers ? 0 : 1;
	for (long i = 0; i < started; i++) {
		pthread_join(threads[i], NULL);
		kf_worker_free(ws[i]);
	}
	kf_info("stopped");
out:
	if (listen_fd > 0)
		close(listen_fd);
	if (listen_addr && listen_addr[0] == '/' && started > 0)
		unlink(listen_addr);
	free(ws);
	free(threads);
	kf_api_free(api);
	kf_config_free(cfg);
	kf_buf_release(&err);
	return status;
}
