// libFuzzer target for the server's request parser: any body must give a validated request or
// a 4xx OpenAI error with a message, never a crash, hang or sanitizer report.
//
//   tests/fuzz/run.sh [seconds]     (builds with clang, runs fuzz_gguf and this target)
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgelm::server;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (Endpoint ep : {Endpoint::kChat, Endpoint::kCompletion}) {
    ParseResult r = parse_request(ep, body);
    if (r.ok()) {
      if (ep == Endpoint::kChat && r.request.messages.empty()) std::abort();
      if (ep == Endpoint::kCompletion && r.request.prompt.empty()) std::abort();
      if (r.request.max_tokens && *r.request.max_tokens < 1) std::abort();
    } else {
      if (r.error->message.empty()) std::abort();
      if (r.error->http_status < 400 || r.error->http_status >= 500) std::abort();
      if (r.error->to_json().empty()) std::abort();
    }
  }
  return 0;
}
