/*
 * sbx_seccomp.h — the seccomp filter every sandbox runs under.
 */
#ifndef SBX_SECCOMP_H
#define SBX_SECCOMP_H

#include <stddef.h>

/*
 * Build the filter (libseccomp) and return its classic BPF program in
 * *prog (malloc'd, the caller frees) and its size in bytes in *len, in the
 * form `bwrap --seccomp FD` reads. Returns 0, or -1 with err set.
 */
int sbx_seccomp_build(unsigned char **prog, size_t *len, char *err,
                      size_t errlen);

#endif
