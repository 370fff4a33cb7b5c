/*-------------------------------------------------------------------------
 *
 * gunzip.h
 *		A gzip body decoded whole (libdeflate), within a size bound.
 *
 * Plain C, no PostgreSQL: http.c calls it with palloc-backed allocators,
 * fuzz/fuzz_gunzip.c with malloc.
 *
 *-------------------------------------------------------------------------
 */
#ifndef GUNZIP_H
#define GUNZIP_H

#include <stddef.h>

typedef enum PsGunzipResult
{
	PS_GUNZIP_OK,
	PS_GUNZIP_BAD,				/* not gzip, or a member cut or corrupt */
	PS_GUNZIP_TOO_LARGE,		/* it decodes to more than max bytes */
	PS_GUNZIP_OOM
} PsGunzipResult;

/* size bytes, or NULL when out of memory; and back */
typedef void *(*PsGunzipAlloc) (void *cxt, size_t size);
typedef void (*PsGunzipFree) (void *cxt, void *p);

/*
 * Decode in[0..n), one gzip member or several one after the other (RFC
 * 1952), into *out (allocated with alloc; *outlen bytes) when it decodes
 * to at most max bytes.  The last member's trailer gives the first guess
 * at the room needed; the room doubles while a member does not fit, up to
 * max.  On PS_GUNZIP_BAD, *good is how many bytes of in decoded before the
 * bad member; on any failure *out is NULL.
 */
extern PsGunzipResult ps_gunzip(const unsigned char *in, size_t n, size_t max,
								PsGunzipAlloc alloc, PsGunzipFree free_fn, void *cxt,
								char **out, size_t *outlen, size_t *good);

#endif							/* GUNZIP_H */
