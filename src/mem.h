/*
 * mem.h — the memory limit: how much one allocation may take, and zeroed
 * memory that stays untouched until it is written.
 *
 * Linux overcommits: a malloc larger than the free memory can succeed and
 * the process is killed later, when the pages are first written. So a big
 * request (SL_MEM_BIG or more) is compared with what the system can give
 * before it is made (sl_mem_fits). (Big zeroed tensors come from calloc,
 * which leaves fresh pages unwritten: see sl_alloc_open in bind/check.c.)
 */
#ifndef SL_MEM_H
#define SL_MEM_H

#include <stddef.h>

/* Requests below this size are never checked (reading /proc costs ~20 us). */
#define SL_MEM_BIG ((size_t)64 << 20)

/* What one allocation can get now, in bytes: MemAvailable + SwapFree from
 * <root>/proc/meminfo, lowered to the room left under each memory cgroup
 * limit of this process (v2 memory.max - memory.current; v1
 * memory.limit_in_bytes - memory.usage_in_bytes; inactive file pages
 * counted as free). root is "" for the live system (specs pass a fixture
 * directory). SIZE_MAX when nothing can be read (not Linux). what gets a
 * short account of the figures ("MemAvailable 23.0 GiB + SwapFree 0 B"). */
size_t sl_mem_available_at(const char *root, char *what, size_t len);

/* 1 when a request of bytes may be made: below SL_MEM_BIG, or at most
 * sl_mem_available_at("") and SEGLOSS_MEMORY_LIMIT (bytes, when set in the
 * environment). On 0, what (when not NULL) says why. */
int sl_mem_fits(size_t bytes, char *what, size_t len);

/* malloc, calloc and aligned_alloc for buffers whose size grows with the
 * input: NULL (errno ENOMEM) when sl_mem_fits refuses, so that the caller's
 * out-of-memory path runs instead of the OOM killer. */
void *sl_mem_malloc(size_t bytes);
void *sl_mem_calloc(size_t n, size_t size);
void *sl_mem_aligned(size_t align, size_t bytes);

#endif
