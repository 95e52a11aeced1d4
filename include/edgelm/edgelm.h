/* edgelm C API: load a GGUF model, open sessions (one KV cache each), tokenize, generate with
 * a streaming callback, cancel, read stats. Plain C, stable across compilers: opaque handles,
 * *_default_params() for every parameter struct, int status codes, no exception ever crosses it.
 *
 *   edgelm_model* model = NULL;
 *   edgelm_model_params mp = edgelm_model_default_params();
 *   if (edgelm_model_load("model.gguf", &mp, &model) != EDGELM_OK) {
 *     fprintf(stderr, "%s\n", edgelm_last_error());
 *     return 1;
 *   }
 *   edgelm_session* s = NULL;
 *   edgelm_session_params sp = edgelm_session_default_params();
 *   edgelm_session_create(model, &sp, &s);
 *   edgelm_generate_params gp = edgelm_generate_default_params();
 *   gp.max_tokens = 32;
 *   gp.temperature = 0.0f;
 *   edgelm_generate(s, "Once upon a time", &gp, on_text, NULL);   // on_text prints text
 *   edgelm_session_free(s);
 *   edgelm_model_free(model);
 *
 * Threading: a model may be shared by sessions on different threads; one session must be used
 * by one thread at a time, except edgelm_session_cancel(), which any thread may call.
 * Errors: every function returning int returns EDGELM_OK (0) or one of the edgelm_status
 * codes; edgelm_last_error() then describes the failure (per thread).
 */
#ifndef EDGELM_EDGELM_H
#define EDGELM_EDGELM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#if defined(EDGELM_BUILDING_LIBRARY)
#define EDGELM_API __declspec(dllexport)
#else
#define EDGELM_API __declspec(dllimport)
#endif
#else
#define EDGELM_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: the same numbers as edgelm::StatusCode, plus EDGELM_ERR_UNKNOWN. */
enum edgelm_status {
  EDGELM_OK = 0,
  EDGELM_ERR_INVALID_ARGUMENT = 1,   /* a NULL handle, a bad parameter value */
  EDGELM_ERR_NOT_FOUND = 2,          /* e.g. the model file does not exist */
  EDGELM_ERR_OUT_OF_RANGE = 3,       /* prompt longer than the context, buffer too small */
  EDGELM_ERR_DATA_LOSS = 4,          /* corrupt or truncated file */
  EDGELM_ERR_UNIMPLEMENTED = 5,      /* valid input that edgelm does not support */
  EDGELM_ERR_RESOURCE_EXHAUSTED = 6, /* out of memory */
  EDGELM_ERR_CANCELLED = 7,          /* edgelm_session_cancel() stopped the generation */
  EDGELM_ERR_INTERNAL = 8,           /* a bug; please report it */
  EDGELM_ERR_IO = 9,                 /* read or map failure */
  EDGELM_ERR_FAILED_PRECONDITION = 10,
  EDGELM_ERR_UNKNOWN = 99 /* an unexpected exception inside the library */
};

typedef struct edgelm_model edgelm_model;     /* a loaded model + tokenizer (opaque) */
typedef struct edgelm_session edgelm_session; /* one conversation / KV cache (opaque) */

typedef struct edgelm_model_params {
  bool log_summary;  /* log a one-line model summary to stderr when loaded (default false) */
  bool strict_quant; /* fail with EDGELM_ERR_FAILED_PRECONDITION instead of converting a tensor
                        whose type has no kernel on this CPU at load (default false; see
                        docs/quantization.md, `edgelm audit`) */
} edgelm_model_params;

typedef struct edgelm_session_params {
  int32_t n_ctx;     /* context size in tokens; 0 = the model's training context, at most 4096 */
  int32_t n_threads; /* 0 = physical cores */
} edgelm_session_params;

typedef struct edgelm_generate_params {
  int32_t max_tokens;      /* tokens to generate at most (default 128); < 0 = until end of text
                              or a full context; 0 = only evaluate the prompt into the cache */
  float temperature;       /* <= 0 = greedy (default 0.8) */
  int32_t top_k;           /* <= 0 = off (default 40) */
  float top_p;             /* >= 1 = off (default 0.95) */
  float min_p;             /* <= 0 = off (default 0.05) */
  float repeat_penalty;    /* 1 = off (default 1) */
  int32_t repeat_last_n;   /* penalty window; 0 = off, -1 = all (default 64) */
  float frequency_penalty; /* default 0 */
  float presence_penalty;  /* default 0 */
  uint64_t seed;           /* EDGELM_RANDOM_SEED = random (default) */
  const char* const* stop; /* stop strings (not included in the output); may be NULL */
  size_t n_stop;           /* number of entries in stop */
  bool add_special;        /* add BOS etc. as the model asks (default true) */
  bool parse_special; /* "<s>", "<|im_start|>" in the prompt become special tokens (default true) */
  bool reuse_cache;   /* reuse the KV-cache prefix shared with the previous prompt (default true) */
} edgelm_generate_params;

#define EDGELM_RANDOM_SEED UINT64_MAX

/* Streaming callback: `text` (not NUL-terminated, `len` bytes, whole UTF-8 characters) became
 * final with token `token`; len may be 0 while text is held back (partial character or possible
 * stop string). A last call with token = -1 may deliver held text at the end. Return true to
 * continue, false to stop (edgelm_generate then returns EDGELM_OK). */
typedef bool (*edgelm_text_callback)(const char* text, size_t len, int32_t token, void* user_data);

/* ---- defaults and errors ---- */

/* Default parameter values (documented on each field). Never fail. */
EDGELM_API edgelm_model_params edgelm_model_default_params(void);
EDGELM_API edgelm_session_params edgelm_session_default_params(void);
EDGELM_API edgelm_generate_params edgelm_generate_default_params(void);

/* Message of the last failed call on this thread ("" if none). Valid until the next edgelm call
 * on this thread. Never NULL. */
EDGELM_API const char* edgelm_last_error(void);
/* "OK", "INVALID_ARGUMENT", ... for a status code; "UNKNOWN" for others. Never NULL. */
EDGELM_API const char* edgelm_status_name(int status);
/* Version and build ("edgelm 0.1.0 (commit ..., compiler, build type)"). Never NULL. */
EDGELM_API const char* edgelm_version(void);

/* ---- model ---- */

/* Loads a GGUF model and its tokenizer. params may be NULL (defaults). On success *out is a new
 * model (free with edgelm_model_free) and EDGELM_OK is returned; on failure *out is NULL and the
 * code says why: NOT_FOUND / IO (file), DATA_LOSS (corrupt), UNIMPLEMENTED (unsupported
 * architecture or tensor type), INVALID_ARGUMENT (NULL path or out). */
EDGELM_API int edgelm_model_load(const char* path, const edgelm_model_params* params,
                                 edgelm_model** out);
/* Frees a model; NULL is ignored. Sessions opened from it stay valid (they keep it alive). */
EDGELM_API void edgelm_model_free(edgelm_model* model);
/* Vocabulary size, or -1 for a NULL model. */
EDGELM_API int32_t edgelm_model_n_vocab(const edgelm_model* model);

/* Text -> token ids. Writes at most n_max ids to tokens (may be NULL when n_max is 0) and the
 * full count to *n_out. Returns EDGELM_OK, EDGELM_ERR_OUT_OF_RANGE when n_max is too small (call
 * again with *n_out), EDGELM_ERR_INVALID_ARGUMENT for NULL model/text/n_out. */
EDGELM_API int edgelm_tokenize(const edgelm_model* model, const char* text, size_t text_len,
                               bool add_special, bool parse_special, int32_t* tokens, int32_t n_max,
                               int32_t* n_out);
/* One token's text as raw bytes (may be part of a UTF-8 character), NUL-terminated in buf.
 * *n_out gets the length without the NUL. Returns EDGELM_OK, EDGELM_ERR_OUT_OF_RANGE when
 * buf_size <= length (nothing useful written; call again with *n_out + 1), or
 * EDGELM_ERR_INVALID_ARGUMENT (NULL model/n_out, token outside the vocabulary). */
EDGELM_API int edgelm_token_to_piece(const edgelm_model* model, int32_t token, char* buf,
                                     size_t buf_size, size_t* n_out);

/* ---- sessions ---- */

/* Opens a session (allocates its KV cache). params may be NULL. On success *out is a new
 * session (free with edgelm_session_free). Errors: INVALID_ARGUMENT (NULL model/out, bad n_ctx),
 * RESOURCE_EXHAUSTED. */
EDGELM_API int edgelm_session_create(edgelm_model* model, const edgelm_session_params* params,
                                     edgelm_session** out);
/* Frees a session; NULL is ignored. Must not run concurrently with a generate on it. */
EDGELM_API void edgelm_session_free(edgelm_session* session);
/* Forgets the session's KV cache. */
EDGELM_API void edgelm_session_reset(edgelm_session* session);

/* Generates a continuation of `prompt` (the whole text: a prefix shared with the previous call
 * is reused from the cache when params->reuse_cache). callback may be NULL; params may be NULL.
 * Returns EDGELM_OK when generation ended normally (end of text, stop string, max_tokens, full
 * context, or the callback returned false), EDGELM_ERR_CANCELLED after edgelm_session_cancel(),
 * EDGELM_ERR_OUT_OF_RANGE when the prompt does not fit the context, EDGELM_ERR_INVALID_ARGUMENT
 * for NULL session/prompt or an empty prompt, or the error of the model. */
EDGELM_API int edgelm_generate(edgelm_session* session, const char* prompt,
                               const edgelm_generate_params* params, edgelm_text_callback callback,
                               void* user_data);
/* Asks the generation running on `session` (on another thread, or from its callback) to stop
 * before the next token. Safe from any thread; a later edgelm_generate clears it. */
EDGELM_API void edgelm_session_cancel(edgelm_session* session);

/* Stats of the session's last generation as one JSON line (keys: load_ms, ttft_ms,
 * prompt_tokens, cached_tokens, prefill_tokens, prefill_ms, prefill_tps, decode_tokens,
 * decode_ms, decode_tps, generated_tokens, total_ms, peak_rss_bytes, stop_reason, seed, n_ctx,
 * n_threads), NUL-terminated in buf; *n_out gets the length without the NUL. Returns EDGELM_OK,
 * EDGELM_ERR_OUT_OF_RANGE when buf_size <= length (call again with *n_out + 1),
 * EDGELM_ERR_INVALID_ARGUMENT for NULL session/n_out, EDGELM_ERR_FAILED_PRECONDITION when
 * nothing was generated yet. */
EDGELM_API int edgelm_session_stats_json(const edgelm_session* session, char* buf, size_t buf_size,
                                         size_t* n_out);

/* ---- governor: device policy (temperature, battery, charger, pacing; docs/governor.md) ---- */

typedef struct edgelm_governor edgelm_governor; /* a policy + its sensors (opaque) */

enum edgelm_governor_action {
  EDGELM_GOVERNOR_ALLOW = 0, /* run on the device now */
  EDGELM_GOVERNOR_DEFER = 1, /* wait delay_ms, then ask again */
  EDGELM_GOVERNOR_REFUSE = 2 /* do not run on the device (route elsewhere) */
};

typedef struct edgelm_governor_decision {
  int32_t action;   /* an edgelm_governor_action */
  int64_t delay_ms; /* DEFER: how long to wait */
  char code[32];    /* "ok", "unplugged", "battery", "max_temp", "cooldown", "budget",
                       "throttle", "no_sensor"; NUL-terminated */
  char reason[256]; /* human-readable, NUL-terminated (truncated to fit) */
} edgelm_governor_decision;

/* Creates a governor from a policy JSON text (the format of docs/governor.md; NULL = "{}", no
 * limits). Its sensors are the values pushed with edgelm_governor_push_*, unless the policy
 * says "sensors": "sysfs" (Linux/Android files) or "none". Returns EDGELM_OK, or
 * EDGELM_ERR_INVALID_ARGUMENT (NULL out, bad JSON, unknown key, bad value: the message names
 * the key). */
EDGELM_API int edgelm_governor_create(const char* config_json, edgelm_governor** out);
/* Frees a governor; NULL is ignored. Sessions it is attached to keep using it until detached. */
EDGELM_API void edgelm_governor_free(edgelm_governor* governor);
/* Push sensor values (any thread). EDGELM_ERR_INVALID_ARGUMENT for NULL, a non-finite value or
 * a battery level outside 0..100; EDGELM_ERR_FAILED_PRECONDITION when the governor reads
 * another source (policy "sensors"). */
EDGELM_API int edgelm_governor_push_temperature(edgelm_governor* governor, double celsius);
EDGELM_API int edgelm_governor_push_battery(edgelm_governor* governor, double percent);
EDGELM_API int edgelm_governor_push_plugged(edgelm_governor* governor, bool plugged);
/* The decision for a new request now (reads the sensors). EDGELM_OK, or
 * EDGELM_ERR_INVALID_ARGUMENT for NULL arguments. */
EDGELM_API int edgelm_governor_decide(edgelm_governor* governor, edgelm_governor_decision* out);
/* Makes the session's generations consult the governor before the prompt and before every
 * token (pacing sleeps inside edgelm_generate); NULL detaches. While attached, edgelm_generate
 * returns EDGELM_ERR_FAILED_PRECONDITION (message: the reason) when the governor refuses before
 * the prompt, and EDGELM_OK with stop_reason "governor" in the stats when it stops a generation
 * under way. EDGELM_ERR_INVALID_ARGUMENT for a NULL session. */
EDGELM_API int edgelm_session_set_governor(edgelm_session* session, edgelm_governor* governor);

/* ---- router: each request on the device or in an OpenAI-compatible cloud (docs/router.md) ---- */

typedef struct edgelm_router edgelm_router; /* a device model + a cloud endpoint + a policy */

enum edgelm_privacy {
  EDGELM_PRIVACY_EITHER = 0,     /* the router may use the device or the cloud */
  EDGELM_PRIVACY_DEVICE_ONLY = 1 /* never sent to the cloud; fails if the device cannot answer */
};

typedef struct edgelm_router_params {
  const char* cloud_url;      /* "http://host:port" or "https://host/v1"; NULL or "" = no cloud */
  const char* cloud_api_key;  /* sent as a Bearer token; NULL = none */
  const char* cloud_model;    /* "model" sent to the cloud; NULL = "default" */
  const char* config_json;    /* router config (docs/router.md, e.g. from edgelm route calibrate
                                 --out); NULL = defaults: no uncertainty threshold */
  int32_t timeout_ms;         /* per cloud try; default 60000 */
  int32_t connect_timeout_ms; /* default 2000 */
  int32_t max_retries;        /* cloud retries after the first try (jittered backoff); default 2 */
  int32_t n_ctx;              /* device context; 0 = the model's, at most 4096 */
  int32_t n_threads;          /* device threads; 0 = physical cores */
} edgelm_router_params;

typedef struct edgelm_route_params {
  int32_t privacy;        /* an edgelm_privacy; default EITHER */
  int32_t max_tokens;     /* default 128 */
  float temperature;      /* default 0 (greedy on the device) */
  bool stream;            /* stream from the cloud (SSE); default false */
  const char* prefer;     /* hint "device" / "cloud"; NULL = none */
  const char* task;       /* hint, see the config's cloud_tasks; NULL = none */
  const char* difficulty; /* hint "easy" / "hard"; NULL = none */
  const char* system;     /* system message; NULL = none */
} edgelm_route_params;

EDGELM_API edgelm_router_params edgelm_router_default_params(void);
EDGELM_API edgelm_route_params edgelm_route_default_params(void);

/* Creates a router. model may be NULL (cloud only); the router keeps it alive. params may be
 * NULL (no cloud: every request runs on the device). governor may be NULL; when set, the
 * governor's refusal sends requests to the cloud (device-only ones fail), before a request and
 * between tokens (the cloud then continues the text already produced). Returns EDGELM_OK, or
 * EDGELM_ERR_INVALID_ARGUMENT (NULL out, bad config JSON: the message names the key). */
EDGELM_API int edgelm_router_create(edgelm_model* model, const edgelm_router_params* params,
                                    edgelm_governor* governor, edgelm_router** out);
/* Frees a router; NULL is ignored. */
EDGELM_API void edgelm_router_free(edgelm_router* router);
/* Answers one user prompt where the router decides; text reaches callback as it is produced
 * (token is -1: the cloud's text has no ids). Returns EDGELM_OK when answered (on either side,
 * after any fallback), otherwise the error of the last side tried, e.g.
 * EDGELM_ERR_FAILED_PRECONDITION when no side may answer (a device-only request with the
 * governor refusing). In every case edgelm_router_last_decision_json then tells where it ran and
 * why. Thread-safe (device work is serialised). */
EDGELM_API int edgelm_route(edgelm_router* router, const char* prompt,
                            const edgelm_route_params* params, edgelm_text_callback callback,
                            void* user_data);
/* The last edgelm_route's decision on this router as one JSON line ({"target": "device" |
 * "cloud" | "none", "privacy", "reasons": [...], "attempts": [{"target","ok","error",
 * "http_status","ms"}], "prompt_tokens", "uncertainty", "threshold"}), NUL-terminated in buf.
 * Returns EDGELM_OK, EDGELM_ERR_OUT_OF_RANGE when buf_size <= length (call again with
 * *n_out + 1), EDGELM_ERR_INVALID_ARGUMENT for NULL router/n_out,
 * EDGELM_ERR_FAILED_PRECONDITION before the first edgelm_route. */
EDGELM_API int edgelm_router_last_decision_json(edgelm_router* router, char* buf, size_t buf_size,
                                                size_t* n_out);

/* ---- monitor: quality-drift monitoring (docs/monitor.md) ---- */

typedef struct edgelm_monitor edgelm_monitor; /* a feature store + baseline + alert callback */

/* Called from edgelm_monitor_check (on the caller's thread) once per alarm. kind is one of
 * "feature_drift", "canary_perplexity", "canary_agreement", "canary_overlap",
 * "canary_feature_drift"; feature names the feature or figure; message is one readable line;
 * value crossed threshold. The strings are valid during the call only. */
typedef void (*edgelm_alert_callback)(const char* kind, const char* feature, const char* message,
                                      double value, double threshold, void* user_data);

typedef struct edgelm_monitor_params {
  int64_t max_rows;          /* ring-buffer capacity of the store; default 10000 */
  bool keep_text;            /* store prompt and output text; default false (features only) */
  const char* config_path;   /* monitor config JSON (its max_rows/keep_text win); NULL = none */
  const char* baseline_path; /* baseline JSON or release manifest; NULL = no drift tests */
  edgelm_alert_callback on_alert; /* NULL = none */
  void* user_data;                /* passed to on_alert */
} edgelm_monitor_params;

EDGELM_API edgelm_monitor_params edgelm_monitor_default_params(void);
/* Opens (or creates) the SQLite store at db_path. Returns EDGELM_OK and *out, or
 * EDGELM_ERR_INVALID_ARGUMENT (NULL db_path/out, bad config or baseline), EDGELM_ERR_NOT_FOUND
 * (config or baseline missing), EDGELM_ERR_DATA_LOSS (not an SQLite file; left unchanged),
 * EDGELM_ERR_FAILED_PRECONDITION (newer schema, foreign database). */
EDGELM_API int edgelm_monitor_open(const char* db_path, const edgelm_monitor_params* params,
                                   edgelm_monitor** out);
EDGELM_API void edgelm_monitor_free(edgelm_monitor* monitor);
/* Records the features of the session's last generation (lengths, mean log-probability and
 * entropy, stop reason, empty/repeated output, latency, speed). prompt is stored only with
 * keep_text (may be NULL); model_name may be NULL. EDGELM_ERR_FAILED_PRECONDITION when the
 * session has generated nothing yet. */
EDGELM_API int edgelm_monitor_record(edgelm_monitor* monitor, const edgelm_session* session,
                                     const char* model_name, const char* prompt);
/* Tests the newest rows against the baseline, calls on_alert per alarm, sets *alarm (may be
 * NULL) and writes the report JSON (docs/monitor.md) into buf (NUL-terminated, *n_out = length;
 * buf may be NULL to ask for the size: EDGELM_ERR_OUT_OF_RANGE, call again with *n_out + 1). */
EDGELM_API int edgelm_monitor_check(edgelm_monitor* monitor, bool* alarm, char* buf,
                                    size_t buf_size, size_t* n_out);

#ifdef __cplusplus
}
#endif

#endif /* EDGELM_EDGELM_H */
