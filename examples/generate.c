/* Minimal use of the edgelm C API: load a GGUF model, stream a greedy continuation to stdout,
 * print the stats line to stderr.
 *
 *   build/examples/edgelm-example-generate MODEL.gguf "Once upon a time" [N]
 */
#include <edgelm/edgelm.h>
#include <stdio.h>
#include <stdlib.h>

static bool on_text(const char* text, size_t len, int32_t token, void* user_data) {
  (void)token;
  (void)user_data;
  fwrite(text, 1, len, stdout);
  fflush(stdout);
  return true; /* keep going */
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.gguf PROMPT [N]\n", argv[0]);
    return 2;
  }
  edgelm_model* model = NULL;
  int rc = edgelm_model_load(argv[1], NULL, &model);
  if (rc != EDGELM_OK) {
    fprintf(stderr, "load failed (%s): %s\n", edgelm_status_name(rc), edgelm_last_error());
    return 1;
  }
  edgelm_session* session = NULL;
  rc = edgelm_session_create(model, NULL, &session);
  if (rc != EDGELM_OK) {
    fprintf(stderr, "session failed: %s\n", edgelm_last_error());
    edgelm_model_free(model);
    return 1;
  }
  edgelm_generate_params gp = edgelm_generate_default_params();
  gp.temperature = 0; /* greedy: reproducible */
  gp.max_tokens = argc > 3 ? atoi(argv[3]) : 32;
  rc = edgelm_generate(session, argv[2], &gp, on_text, NULL);
  printf("\n");
  if (rc == EDGELM_OK) {
    char stats[1024];
    size_t n = 0;
    if (edgelm_session_stats_json(session, stats, sizeof stats, &n) == EDGELM_OK)
      fprintf(stderr, "%s\n", stats);
  } else {
    fprintf(stderr, "generate failed (%s): %s\n", edgelm_status_name(rc), edgelm_last_error());
  }
  edgelm_session_free(session);
  edgelm_model_free(model);
  return rc == EDGELM_OK ? 0 : 1;
}
