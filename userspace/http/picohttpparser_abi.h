// The ABI of picohttpparser's tokenizer as exported by Debian 12's
// libh2o-evloop0.13 (h2o 2.2.5 bundles picohttpparser and exports phr_*),
// which ships no header. These declarations mirror picohttpparser.h of that
// release; docs/dependencies.md says why this tokenizer was chosen.
#pragma once

#include <cstddef>

extern "C" {

struct phr_header {
  const char* name;    // nullptr for an obs-fold continuation line
  size_t name_len;
  const char* value;
  size_t value_len;
};

// Returns the number of bytes consumed by the head, -1 on a malformed head,
// -2 when the head is incomplete. `*num_headers` is capacity in, count out.
int phr_parse_request(const char* buf, size_t len, const char** method, size_t* method_len,
                      const char** path, size_t* path_len, int* minor_version,
                      struct phr_header* headers, size_t* num_headers, size_t last_len);

int phr_parse_response(const char* buf, size_t len, int* minor_version, int* status,
                       const char** msg, size_t* msg_len, struct phr_header* headers,
                       size_t* num_headers, size_t last_len);
}
