// The C API (shared library `edgelm`) called as a C program would: defaults, error codes and
// messages for bad input, tokenize, greedy generation against llama.cpp's golden tokens,
// callback stop, cancel from the callback, stats JSON; and the RAII wrappers in edgelm.hpp.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "edgelm/edgelm.h"
#include "edgelm/edgelm.hpp"
#include "test_util.h"

namespace {

constexpr const char* kModel = "models/conf-llama-spm-f16.gguf";
constexpr const char* kGolden = "golden/conformance/conf-llama-spm-f16.json";

struct Collected {
  std::string text;
  std::vector<int32_t> tokens;
  int stop_after = -1;  // return false after this many tokens
  edgelm_session* cancel_session = nullptr;
  int cancel_after = -1;
};

extern "C" bool collect(const char* text, size_t len, int32_t token, void* user) {
  auto* c = static_cast<Collected*>(user);
  c->text.append(text, len);
  if (token >= 0) c->tokens.push_back(token);
  const int n = static_cast<int>(c->tokens.size());
  if (c->cancel_session && n == c->cancel_after) edgelm_session_cancel(c->cancel_session);
  return !(c->stop_after >= 0 && n >= c->stop_after);
}

TEST(CApi, DefaultsAndNames) {
  edgelm_generate_params gp = edgelm_generate_default_params();
  EXPECT_EQ(gp.max_tokens, 128);
  EXPECT_FLOAT_EQ(gp.temperature, 0.8f);
  EXPECT_EQ(gp.top_k, 40);
  EXPECT_EQ(gp.seed, EDGELM_RANDOM_SEED);
  EXPECT_TRUE(gp.add_special);
  EXPECT_EQ(gp.stop, nullptr);
  edgelm_session_params sp = edgelm_session_default_params();
  EXPECT_EQ(sp.n_ctx, 0);
  EXPECT_STREQ(edgelm_status_name(EDGELM_OK), "OK");
  EXPECT_STREQ(edgelm_status_name(EDGELM_ERR_DATA_LOSS), "DATA_LOSS");
  EXPECT_STREQ(edgelm_status_name(12345), "UNKNOWN");
  EXPECT_NE(std::strlen(edgelm_version()), 0u);
}

TEST(CApi, ErrorsHaveCodesAndMessages) {
  edgelm_model* m = reinterpret_cast<edgelm_model*>(0x1);
  const std::string missing = edgelm::testing::temp_path("capi-missing.gguf");
  int rc = edgelm_model_load(missing.c_str(), nullptr, &m);
  EXPECT_NE(rc, EDGELM_OK);
  EXPECT_EQ(m, nullptr);
  EXPECT_NE(std::string(edgelm_last_error()).find("capi-missing.gguf"), std::string::npos)
      << edgelm_last_error();

  const std::string junk = edgelm::testing::temp_path("capi-junk.gguf");
  {
    std::ofstream f(junk, std::ios::binary);
    f << "GGUF but not really a valid header at all, and some more bytes to read";
  }
  rc = edgelm_model_load(junk.c_str(), nullptr, &m);
  EXPECT_NE(rc, EDGELM_OK);
  EXPECT_NE(std::string(edgelm_last_error()), "");
  std::remove(junk.c_str());

  EXPECT_EQ(edgelm_model_load(nullptr, nullptr, &m), EDGELM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(edgelm_model_load("x", nullptr, nullptr), EDGELM_ERR_INVALID_ARGUMENT);
  edgelm_session* s = nullptr;
  EXPECT_EQ(edgelm_session_create(nullptr, nullptr, &s), EDGELM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(edgelm_generate(nullptr, "x", nullptr, nullptr, nullptr), EDGELM_ERR_INVALID_ARGUMENT);
  int32_t n = 0;
  EXPECT_EQ(edgelm_tokenize(nullptr, "x", 1, true, true, nullptr, 0, &n),
            EDGELM_ERR_INVALID_ARGUMENT);
  size_t len = 0;
  EXPECT_EQ(edgelm_session_stats_json(nullptr, nullptr, 0, &len), EDGELM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(edgelm_model_n_vocab(nullptr), -1);
  edgelm_model_free(nullptr);
  edgelm_session_free(nullptr);
  edgelm_session_cancel(nullptr);
}

TEST(CApi, TokenizeGenerateCancelStats) {
  EDGELM_REQUIRE_SHARED(model_path, kModel);
  EDGELM_REQUIRE_SHARED(golden_path, kGolden);
  std::ifstream gf(golden_path);
  const auto golden = nlohmann::json::parse(gf);
  const auto& g = golden["greedy"][0];
  const std::vector<int32_t> prompt_ids = g["prompt_ids"].get<std::vector<int32_t>>();
  const std::vector<int32_t> gold = g["ids"].get<std::vector<int32_t>>();

  edgelm_model* model = nullptr;
  ASSERT_EQ(edgelm_model_load(model_path.c_str(), nullptr, &model), EDGELM_OK)
      << edgelm_last_error();
  EXPECT_EQ(edgelm_model_n_vocab(model), 32000);

  // Tokenize: too small a buffer first, then the right size.
  const std::string prompt = g["prompt"];
  int32_t n = 0;
  int32_t one[1];
  EXPECT_EQ(edgelm_tokenize(model, prompt.data(), prompt.size(), true, true, one, 1, &n),
            EDGELM_ERR_OUT_OF_RANGE);
  ASSERT_EQ(n, static_cast<int32_t>(prompt_ids.size()));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  ASSERT_EQ(edgelm_tokenize(model, prompt.data(), prompt.size(), true, true, ids.data(), n, &n),
            EDGELM_OK);
  EXPECT_EQ(ids, prompt_ids);
  char piece[64];
  size_t plen = 0;
  ASSERT_EQ(edgelm_token_to_piece(model, prompt_ids[1], piece, sizeof piece, &plen), EDGELM_OK);
  EXPECT_EQ(std::string(piece, plen), " Once");  // SPM "▁Once": the space is kept
  EXPECT_EQ(edgelm_token_to_piece(model, 32000, piece, sizeof piece, &plen),
            EDGELM_ERR_INVALID_ARGUMENT);

  edgelm_session* s = nullptr;
  edgelm_session_params sp = edgelm_session_default_params();
  sp.n_ctx = 64;
  sp.n_threads = 2;
  ASSERT_EQ(edgelm_session_create(model, &sp, &s), EDGELM_OK) << edgelm_last_error();
  size_t slen = 0;
  EXPECT_EQ(edgelm_session_stats_json(s, nullptr, 0, &slen), EDGELM_ERR_FAILED_PRECONDITION);

  // Greedy, 8 tokens (before any near-tie in the golden steps): llama.cpp's ids.
  edgelm_generate_params gp = edgelm_generate_default_params();
  gp.max_tokens = 8;
  gp.temperature = 0.0f;
  Collected c;
  ASSERT_EQ(edgelm_generate(s, prompt.c_str(), &gp, collect, &c), EDGELM_OK) << edgelm_last_error();
  EXPECT_EQ(c.tokens, std::vector<int32_t>(gold.begin(), gold.begin() + 8));
  const std::string gold_text = g["text"];
  EXPECT_EQ(gold_text.rfind(c.text, 0), 0u) << c.text;

  // Stats JSON: too small, then right.
  char small[8];
  EXPECT_EQ(edgelm_session_stats_json(s, small, sizeof small, &slen), EDGELM_ERR_OUT_OF_RANGE);
  std::string buf(slen + 1, '\0');
  ASSERT_EQ(edgelm_session_stats_json(s, buf.data(), buf.size(), &slen), EDGELM_OK);
  buf.resize(slen);
  const auto st = nlohmann::json::parse(buf);
  EXPECT_EQ(st["generated_tokens"], 8);
  EXPECT_EQ(st["n_ctx"], 64);

  // The callback stops after 3 tokens: OK. Cancel from the callback: CANCELLED.
  Collected stop3;
  stop3.stop_after = 3;
  EXPECT_EQ(edgelm_generate(s, prompt.c_str(), &gp, collect, &stop3), EDGELM_OK);
  EXPECT_EQ(stop3.tokens.size(), 3u);
  Collected cancel2;
  cancel2.cancel_session = s;
  cancel2.cancel_after = 2;
  EXPECT_EQ(edgelm_generate(s, prompt.c_str(), &gp, collect, &cancel2), EDGELM_ERR_CANCELLED);
  EXPECT_EQ(cancel2.tokens.size(), 2u);

  // Prompt longer than the context: OUT_OF_RANGE with a message.
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += " word";
  EXPECT_EQ(edgelm_generate(s, long_prompt.c_str(), &gp, nullptr, nullptr),
            EDGELM_ERR_OUT_OF_RANGE);
  EXPECT_NE(std::string(edgelm_last_error()).find("context"), std::string::npos);

  // Stop strings through the C struct.
  const size_t cut = gold_text.find(" nearly");
  ASSERT_NE(cut, std::string::npos);
  const char* stops[] = {" nearly"};
  gp.stop = stops;
  gp.n_stop = 1;
  Collected cs;
  EXPECT_EQ(edgelm_generate(s, prompt.c_str(), &gp, collect, &cs), EDGELM_OK);
  EXPECT_EQ(cs.text, gold_text.substr(0, cut));

  // The session keeps the model alive after edgelm_model_free.
  edgelm_model_free(model);
  gp.stop = nullptr;
  gp.n_stop = 0;
  gp.max_tokens = 2;
  Collected after;
  EXPECT_EQ(edgelm_generate(s, prompt.c_str(), &gp, collect, &after), EDGELM_OK);
  EXPECT_EQ(after.tokens, std::vector<int32_t>(gold.begin(), gold.begin() + 2));
  edgelm_session_free(s);
}

TEST(CApi, CppWrappers) {
  EDGELM_REQUIRE_SHARED(model_path, kModel);
  edgelm::cpp::Model model;
  EXPECT_FALSE(model);
  EXPECT_NE(model.load("/nonexistent/x.gguf"), EDGELM_OK);
  ASSERT_EQ(model.load(model_path.c_str()), EDGELM_OK) << edgelm_last_error();
  std::vector<int32_t> ids;
  ASSERT_EQ(model.tokenize("Once upon a time", ids), EDGELM_OK);
  EXPECT_EQ(ids.size(), 5u);
  edgelm::cpp::Session session;
  edgelm_session_params sp = edgelm_session_default_params();
  sp.n_ctx = 32;
  sp.n_threads = 2;
  ASSERT_EQ(session.create(model, &sp), EDGELM_OK);
  EXPECT_EQ(session.stats_json(), "");
  edgelm_generate_params gp = edgelm_generate_default_params();
  gp.max_tokens = 3;
  gp.temperature = 0.0f;
  int calls = 0;
  EXPECT_EQ(session.generate("Once upon a time", gp,
                             [&](std::string_view, int32_t) {
                               ++calls;
                               return true;
                             }),
            EDGELM_OK);
  EXPECT_GE(calls, 3);
  EXPECT_NE(session.stats_json().find("\"generated_tokens\":3"), std::string::npos);
  // A throwing callback stops generation without crossing the C boundary.
  EXPECT_EQ(session.generate(
                "Once upon a time", gp,
                [&](std::string_view, int32_t) -> bool { throw std::runtime_error("boom"); }),
            EDGELM_OK);
  edgelm::cpp::Session moved = std::move(session);
  EXPECT_TRUE(moved);
  EXPECT_FALSE(session);  // NOLINT(bugprone-use-after-move)
}

}  // namespace
