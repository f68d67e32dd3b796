/*
 * bare-fcgi.c - the FastCGI path's own ceiling, for the API benchmark: a
 * libfcgi app that answers every request with a fixed body and does no
 * other work.  The bench gives it the exact bytes kefu-api answered for the
 * same request, so the web server moves the same bytes for both.
 *
 *   bare-fcgi --listen SOCKET [--threads N] --map URI=FILE [--map URI=FILE ...]
 *
 * A request whose REQUEST_URI (without the query) is a mapped URI gets
 * that file's bytes as application/json; others get 404.  Threads (default
 * 16, like kefu-api's [Api] Workers) each call FCGX_Accept_r on the shared
 * socket with no lock, as kefu-api does (Linux lets threads accept at
 * once).  SIGTERM/SIGINT: shut the socket, let the threads return, exit.
 */
#include "kf_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcgiapp.h>

#define MAX_MAP 8
#define MAX_THREADS 64

struct map {
	const char *uri;
	char *body;
	size_t len;
	char head[128];
	size_t head_len;
};

static struct map maps[MAX_MAP];
static int nmaps;
static int listen_fd = -1;
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
	if (listen_fd >= 0)
		shutdown(listen_fd, SHUT_RDWR);
}

static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	size_t got = 0;

	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "bare-fcgi: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		exit(2);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
}

static void *serve(void *arg)
{
	FCGX_Request req;

	(void)arg;
	FCGX_InitRequest(&req, listen_fd, 0);
	while (!stopping) {
		const char *uri;
		size_t ul;
		int rc;

		rc = stopping ? -1 : FCGX_Accept_r(&req);
		if (rc < 0)
			break;
		uri = FCGX_GetParam("REQUEST_URI", req.envp);
		ul = uri ? strcspn(uri, "?") : 0;
		{
			const struct map *m = NULL;

			for (int i = 0; i < nmaps; i++)
				if (uri && strlen(maps[i].uri) == ul && memcmp(maps[i].uri, uri, ul) == 0)
					m = &maps[i];
			if (m) {
				FCGX_PutStr(m->head, (int)m->head_len, req.out);
				FCGX_PutStr(m->body, (int)m->len, req.out);
			} else {
				FCGX_FPrintF(req.out, "Status: 404 Not Found\r\nContent-Type: text/plain\r\n"
						      "Content-Length: 10\r\n\r\nnot found\n");
			}
		}
		FCGX_Finish_r(&req);
	}
	FCGX_Free(&req, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *sock = NULL;
	int threads = 16;
	pthread_t tid[MAX_THREADS];
	struct sigaction sa;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--listen") == 0) {
			sock = argv[i + 1];
		} else if (strcmp(argv[i], "--threads") == 0) {
			threads = atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--map") == 0 && nmaps < MAX_MAP) {
			char *eq = strchr(argv[i + 1], '=');

			if (!eq)
				goto usage;
			*eq = '\0';
			maps[nmaps].uri = argv[i + 1];
			maps[nmaps].body = slurp(eq + 1, &maps[nmaps].len);
			maps[nmaps].head_len = (size_t)snprintf(
				maps[nmaps].head, sizeof(maps[nmaps].head),
				"Content-Type: application/json; charset=utf-8\r\nContent-Length: %zu\r\n\r\n",
				maps[nmaps].len);
			nmaps++;
		} else {
			goto usage;
		}
	}
	if (!sock || threads < 1 || threads > MAX_THREADS || !nmaps)
		goto usage;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (FCGX_Init() != 0)
		return 1;
	unlink(sock);
	listen_fd = FCGX_OpenSocket(sock, 1024);
	if (listen_fd < 0) {
		fprintf(stderr, "bare-fcgi: cannot listen on %s\n", sock);
		return 1;
	}
	chmod(sock, 0666);
	for (int i = 0; i < threads; i++)
		pthread_create(&tid[i], NULL, serve, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	unlink(sock);
	return 0;
usage:
	fprintf(stderr, "usage: bare-fcgi --listen SOCKET [--threads N] --map URI=FILE ...\n");
	return 2;
}
