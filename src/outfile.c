/*
 * outfile.c — saving a file whole or not at all; see outfile.h.
 */
#define _DEFAULT_SOURCE /* realpath, fchown */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outfile.h"

int sl_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* What a path names, for messages. */
static const char *kind_of(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
	       : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

static void release(sl_outfile *o)
{
	if (o->fd >= 0)
		close(o->fd);
	if (o->dfd >= 0)
		close(o->dfd);
	free(o->target);
	o->fd = o->dfd = -1;
	o->target = NULL;
}

int sl_outfile_begin(sl_outfile *o, const char *path, char *err, size_t errlen)
{
	o->fd = o->dfd = -1;
	o->target = NULL;
	o->tmp[0] = '\0';

	/* The file to replace: path itself, or the file a symbolic link points
	 * to (the link is kept). */
	struct stat st;
	int exists = 0;
	if (lstat(path, &st) == 0) {
		exists = 1;
		if (S_ISLNK(st.st_mode)) {
			o->target = realpath(path, NULL);
			if (!o->target || stat(o->target, &st) != 0) {
				int e = errno;
				free(o->target);
				o->target = NULL;
				return sl_errf(err, errlen, "cannot write '%s': it is a symbolic link to %s (%s)", path,
				            e == ENOENT ? "a file that does not exist" : "a file that cannot be reached",
				            strerror(e));
			}
		}
		if (!S_ISREG(st.st_mode)) {
			free(o->target);
			o->target = NULL;
			return sl_errf(err, errlen, "cannot write '%s': it is %s, not a regular file", path,
			            kind_of(st.st_mode));
		}
	} else if (errno != ENOENT) {
		return sl_errf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
	}
	if (!o->target && !(o->target = strdup(path)))
		return sl_errf(err, errlen, "cannot write '%s': out of memory", path);

	/* the directory of the target, and its last component */
	char *slash = strrchr(o->target, '/');
	o->base = slash ? slash + 1 : o->target;
	if (*o->base == '\0') {
		release(o);
		return sl_errf(err, errlen, "cannot write '%s': the path names a directory", path);
	}
	if (slash == o->target)
		o->dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	else if (slash) {
		*slash = '\0';
		o->dfd = open(o->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		*slash = '/';
	} else
		o->dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (o->dfd < 0) {
		int e = errno;
		release(o);
		return sl_errf(err, errlen, "cannot write '%s': %s", path, strerror(e));
	}

	/* a short temporary name beside the target (any name length fits) */
	for (int attempt = 0; attempt < 100 && o->fd < 0; attempt++) {
		snprintf(o->tmp, sizeof o->tmp, ".segloss-%ld-%d.tmp", (long)getpid(), attempt);
		o->fd = openat(o->dfd, o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, exists ? 0600 : 0666);
		if (o->fd < 0 && errno != EEXIST)
			break;
	}
	if (o->fd < 0) {
		int e = errno;
		release(o);
		return sl_errf(err, errlen, "cannot write '%s': %s", path, strerror(e));
	}
	/* an existing file keeps its permissions (and, where we may, its owner) */
	if (exists) {
		if (fchown(o->fd, st.st_uid, st.st_gid) != 0) {
			/* only root may give a file away: the new file stays ours */
		}
		if (fchmod(o->fd, st.st_mode & 07777) != 0) {
			int e = errno;
			sl_outfile_abort(o);
			return sl_errf(err, errlen, "cannot write '%s': %s", path, strerror(e));
		}
	}
	return 0;
}

int sl_outfile_write(sl_outfile *o, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(o->fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

void sl_outfile_abort(sl_outfile *o)
{
	if (o->fd >= 0) {
		close(o->fd);
		o->fd = -1;
	}
	if (o->dfd >= 0 && o->tmp[0])
		unlinkat(o->dfd, o->tmp, 0);
	release(o);
}

int sl_outfile_commit(sl_outfile *o, int sync, const char *path, char *err, size_t errlen)
{
	int e = 0;
	if (sync && fsync(o->fd) != 0)
		e = errno;
	/* close reports a failed delayed write (NFS, quota) */
	if (close(o->fd) != 0 && !e)
		e = errno;
	o->fd = -1;
	if (!e && renameat(o->dfd, o->tmp, o->dfd, o->base) != 0)
		e = errno;
	if (e) {
		sl_outfile_abort(o);
		return sl_errf(err, errlen, "cannot write '%s': %s", path, strerror(e));
	}
	if (sync)
		fsync(o->dfd); /* the rename itself; a failure here loses nothing written */
	release(o);
	return 0;
}
