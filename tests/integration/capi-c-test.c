/* The C API from a C99 program (proves edgelm.h is valid C and links against the shared
 * library alone): load the conformance model, greedy-generate 8 tokens twice in two sessions
 * (same ids, and text == the tokens' pieces), check the stats JSON and a missing file's error.
 * (tests/integration/capi-test.cpp checks the ids against llama.cpp's golden file.) Usage:
 * test_capi_c MODEL.gguf. Exit 0 pass, 1 fail, 77 skipped (model absent). */
#include <stdio.h>
#include <string.h>

#include "edgelm/edgelm.h"

struct collected {
  char text[4096];
  size_t len;
  int tokens;
  int32_t ids[64];
};

static bool on_text(const char* text, size_t len, int32_t token, void* user) {
  struct collected* c = (struct collected*)user;
  if (c->len + len < sizeof c->text) {
    memcpy(c->text + c->len, text, len);
    c->len += len;
    c->text[c->len] = '\0';
  }
  if (token >= 0 && c->tokens < 64) c->ids[c->tokens++] = token;
  return true;
}

#define CHECK(cond)                                                                        \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, "FAILED: %s (line %d): %s\n", #cond, __LINE__, edgelm_last_error()); \
      return 1;                                                                            \
    }                                                                                      \
  } while (0)

int main(int argc, char** argv) {
  if (argc < 2) return 1;
  FILE* f = fopen(argv[1], "rb");
  if (f == NULL) {
    printf("SKIPPED: %s is absent\n", argv[1]);
    return 77;
  }
  fclose(f);

  edgelm_model* model = NULL;
  CHECK(edgelm_model_load("/nonexistent/model.gguf", NULL, &model) != EDGELM_OK);
  CHECK(model == NULL);
  CHECK(strstr(edgelm_last_error(), "/nonexistent/model.gguf") != NULL);

  edgelm_model_params mp = edgelm_model_default_params();
  CHECK(edgelm_model_load(argv[1], &mp, &model) == EDGELM_OK);
  edgelm_session_params sp = edgelm_session_default_params();
  sp.n_ctx = 32;
  sp.n_threads = 2;
  edgelm_session* s = NULL;
  CHECK(edgelm_session_create(model, &sp, &s) == EDGELM_OK);

  edgelm_generate_params gp = edgelm_generate_default_params();
  gp.max_tokens = 8;
  gp.temperature = 0.0f;
  struct collected c;
  memset(&c, 0, sizeof c);
  CHECK(edgelm_generate(s, "Once upon a time", &gp, on_text, &c) == EDGELM_OK);
  CHECK(c.tokens == 8);
  CHECK(c.len > 0);

  /* The streamed text is the concatenation of the tokens' pieces. */
  char pieces[4096];
  size_t plen = 0;
  for (int i = 0; i < c.tokens; ++i) {
    size_t n = 0;
    CHECK(edgelm_token_to_piece(model, c.ids[i], pieces + plen, sizeof pieces - plen, &n) ==
          EDGELM_OK);
    plen += n;
  }
  CHECK(plen == c.len && memcmp(pieces, c.text, plen) == 0);

  /* Greedy is deterministic: a second session gives the same ids. */
  edgelm_session* s2 = NULL;
  CHECK(edgelm_session_create(model, &sp, &s2) == EDGELM_OK);
  struct collected c2;
  memset(&c2, 0, sizeof c2);
  CHECK(edgelm_generate(s2, "Once upon a time", &gp, on_text, &c2) == EDGELM_OK);
  CHECK(c2.tokens == 8 && memcmp(c.ids, c2.ids, sizeof c.ids) == 0);
  edgelm_session_free(s2);

  char stats[1024];
  size_t n = 0;
  CHECK(edgelm_session_stats_json(s, stats, sizeof stats, &n) == EDGELM_OK);
  CHECK(n == strlen(stats));
  CHECK(strstr(stats, "\"generated_tokens\":8") != NULL);
  printf("%s\n", c.text);
  printf("%s\n", stats);

  edgelm_session_free(s);
  edgelm_model_free(model);
  printf("PASSED\n");
  return 0;
}
