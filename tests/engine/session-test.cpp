// Session (generation loop) over the fake executor and byte codec: callbacks, EOG, stop
// strings, UTF-8 streaming, cancellation, context limits, KV-prefix reuse, stats JSON.
#include "engine/session.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/text-stream.h"
#include "fakes.h"

namespace edgelm {
namespace {

using testing::ByteCodec;
using testing::FakeExecutor;
using testing::scripted;

struct Fixture {
  std::shared_ptr<ByteCodec> codec = std::make_shared<ByteCodec>();
  FakeExecutor* exec = nullptr;
  std::unique_ptr<Session> session;

  Fixture(const std::string& script_text, size_t prompt_len, int n_ctx = 256,
          bool end_with_eos = true) {
    std::vector<int32_t> script = codec->bytes(script_text);
    if (!end_with_eos) {
      // keep producing 'z' after the script
      for (int i = 0; i < 64; ++i) script.push_back(ByteCodec::tok('z'));
    }
    auto e = std::make_unique<FakeExecutor>(codec->n_vocab(), n_ctx,
                                            scripted(std::move(script), prompt_len));
    exec = e.get();
    session = std::make_unique<Session>(std::move(e), codec, 12.5);
  }
};

GenerateParams greedy(int max_tokens) {
  GenerateParams p;
  p.max_tokens = max_tokens;
  p.sampling = SamplingParams::greedy();
  return p;
}

TEST(Session, StreamsTextThroughCallbackAndStopsAtEog) {
  Fixture f("Hello there", /*prompt_len=*/3);
  std::vector<std::pair<std::string, int32_t>> calls;
  auto r = f.session->generate("hi", greedy(100), [&](std::string_view t, int32_t id) {
    calls.emplace_back(std::string(t), id);
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->text, "Hello there");
  EXPECT_EQ(r->stop_reason, StopReason::kEog);
  EXPECT_EQ(r->tokens.size(), 11u);  // EOS not included
  ASSERT_EQ(calls.size(), 11u);
  EXPECT_EQ(calls[0].first, "H");
  EXPECT_EQ(calls[0].second, ByteCodec::tok('H'));
  std::string joined;
  for (auto& c : calls) joined += c.first;
  EXPECT_EQ(joined, "Hello there");
  // Stats: 3 prompt tokens, 12 sampled tokens (EOS included), 11 single-token evals.
  const GenerationStats& st = r->stats;
  EXPECT_EQ(st.prompt_tokens, 3);
  EXPECT_EQ(st.prefill_tokens, 3);
  EXPECT_EQ(st.cached_tokens, 0);
  EXPECT_EQ(st.generated_tokens, 12);
  EXPECT_EQ(st.decode_tokens, 11);
  EXPECT_EQ(f.exec->evaluated, 3 + 11);
  EXPECT_DOUBLE_EQ(st.load_ms, 12.5);
  EXPECT_GE(st.total_ms, st.ttft_ms);
  EXPECT_GT(st.peak_rss_bytes, 0u);
}

TEST(Session, MaxTokensLimitsOutput) {
  Fixture f("abcdefgh", 3);
  auto r = f.session->generate("hi", greedy(4));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, "abcd");
  EXPECT_EQ(r->stop_reason, StopReason::kMaxTokens);
  EXPECT_EQ(r->stats.decode_tokens, 3);
}

TEST(Session, ZeroMaxTokensOnlyPrefillsAndNegativeIsUnlimited) {
  Fixture f("abcdefgh", 3);
  int calls = 0;
  auto r = f.session->generate("hi", greedy(0), [&](std::string_view, int32_t) {
    ++calls;
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(r->text, "");
  EXPECT_EQ(r->stats.generated_tokens, 0);
  EXPECT_EQ(r->stats.prefill_tokens, 3);
  EXPECT_EQ(f.session->cached_tokens().size(), 3u);
  auto r2 = f.session->generate("hi", greedy(-1));
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->text, "abcdefgh");
  EXPECT_EQ(r2->stop_reason, StopReason::kEog);
  EXPECT_EQ(r2->stats.cached_tokens, 2);  // the last prompt token is evaluated again
}

TEST(Session, StopStringIsNeverEmitted) {
  Fixture f("Sure.\n\nUser: more", 3);
  GenerateParams p = greedy(100);
  p.stop = {"\n\nUser:"};
  std::string streamed;
  auto r = f.session->generate("hi", p, [&](std::string_view t, int32_t) {
    streamed += t;
    // Nothing after "Sure." may ever be shown, not even the newlines that start the stop.
    EXPECT_EQ(streamed.find('\n'), std::string::npos) << streamed;
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, "Sure.");
  EXPECT_EQ(streamed, "Sure.");
  EXPECT_EQ(r->stop_reason, StopReason::kStopString);
}

TEST(Session, HeldBackPrefixIsReleasedWhenItIsNotAStop) {
  Fixture f("a\nb\n", 3);
  GenerateParams p = greedy(100);
  p.stop = {"\n\n"};
  std::vector<std::string> chunks;
  auto r = f.session->generate("hi", p, [&](std::string_view t, int32_t) {
    chunks.emplace_back(t);
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, "a\nb\n");  // the trailing "\n" is released at the end (EOG)
  ASSERT_EQ(chunks.size(), 5u);  // 4 tokens + final flush
  EXPECT_EQ(chunks[1], "");      // "\n" held
  EXPECT_EQ(chunks[2], "\nb");   // released together with "b"
  EXPECT_EQ(chunks[4], "\n");    // final flush
}

TEST(Session, Utf8CharactersAreNeverSplit) {
  const std::string text = "h\xC3\xA9llo \xF0\x9F\x98\x80!";  // "héllo 😀!"
  Fixture f(text, 3);
  std::vector<std::string> chunks;
  auto r = f.session->generate("hi", greedy(100), [&](std::string_view t, int32_t) {
    chunks.emplace_back(t);
    EXPECT_EQ(utf8_incomplete_tail(t), 0u);
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, text);
  // The 4-byte emoji comes out in one chunk, with the 4th byte's token.
  EXPECT_EQ(chunks[7], "");
  EXPECT_EQ(chunks[8], "");
  EXPECT_EQ(chunks[9], "");
  EXPECT_EQ(chunks[10], "\xF0\x9F\x98\x80");
}

TEST(Session, CancelFlagStopsBeforeNextToken) {
  Fixture f("abcdefgh", 3);
  std::atomic<bool> cancel{false};
  int n = 0;
  auto r = f.session->generate(
      "hi", greedy(100),
      [&](std::string_view, int32_t) {
        if (++n == 3) cancel = true;
        return true;
      },
      &cancel);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, "abc");
  EXPECT_EQ(r->stop_reason, StopReason::kCancelled);
}

TEST(Session, SessionCancelFromCallback) {
  Fixture f("abcdefgh", 3);
  Session* s = f.session.get();
  auto r = s->generate("hi", greedy(100), [&](std::string_view t, int32_t) {
    if (t == "b") s->cancel();
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, "ab");
  EXPECT_EQ(r->stop_reason, StopReason::kCancelled);
  // A new generate clears the request.
  auto r2 = s->generate("hi", greedy(3));
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->text, "abc");
}

TEST(Session, CallbackReturningFalseStops) {
  Fixture f("abcdefgh", 3);
  auto r =
      f.session->generate("hi", greedy(100), [&](std::string_view t, int32_t) { return t != "d"; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, "abcd");
  EXPECT_EQ(r->stop_reason, StopReason::kCallback);
}

TEST(Session, PromptLongerThanContextIsAClearError) {
  Fixture f("abc", 3, /*n_ctx=*/8);
  auto r = f.session->generate("0123456789", greedy(4));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(r.status().message().find("11 tokens"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("8"), std::string::npos);
}

TEST(Session, GenerationStopsWhenContextIsFull) {
  Fixture f("", 3, /*n_ctx=*/8, /*end_with_eos=*/false);
  auto r = f.session->generate("hi", greedy(100));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->stop_reason, StopReason::kContextFull);
  EXPECT_EQ(f.exec->n_past(), 8);
  EXPECT_EQ(r->text, "zzzzzz");  // 5 evaluated + the last sampled one
}

TEST(Session, ReusesCachedPrefixAcrossTurns) {
  auto codec = std::make_shared<ByteCodec>();
  // Always answers 'x' then EOS after seeing "x".
  auto next = [](std::span<const int32_t> seq) {
    return seq.back() == ByteCodec::tok('x') ? ByteCodec::kEos : ByteCodec::tok('x');
  };
  auto e = std::make_unique<FakeExecutor>(codec->n_vocab(), 256, next);
  FakeExecutor* exec = e.get();
  Session s(std::move(e), codec);
  auto r1 = s.generate("User: hi\nBot:", greedy(10));
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->text, "x");
  EXPECT_EQ(r1->stats.cached_tokens, 0);
  // Cache: BOS + 13 prompt bytes + 'x' (evaluated before EOS was sampled).
  EXPECT_EQ(s.cached_tokens().size(), 15u);
  const int before = exec->evaluated;
  auto r2 = s.generate("User: hi\nBot:x\nUser: yo\nBot:", greedy(10));
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->stats.cached_tokens, 15);
  EXPECT_EQ(r2->stats.prefill_tokens, 29 - 15);  // BOS + 28 bytes
  EXPECT_EQ(exec->evaluated - before, 14 + 1);
  // A diverging prompt truncates to the common prefix.
  auto r3 = s.generate("User: ho", greedy(10));
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->stats.cached_tokens, 8);  // BOS + "User: h"
  EXPECT_EQ(exec->seq()[8], ByteCodec::tok('o'));
  // The same prompt again still evaluates its last token to get logits.
  auto r4 = s.generate("User: ho", greedy(10));
  ASSERT_TRUE(r4.ok());
  EXPECT_EQ(r4->stats.prefill_tokens, 1);
  // reuse_cache = false starts from scratch.
  GenerateParams p = greedy(10);
  p.reuse_cache = false;
  auto r5 = s.generate("User: ho", p);
  ASSERT_TRUE(r5.ok());
  EXPECT_EQ(r5->stats.cached_tokens, 0);
  EXPECT_EQ(r5->stats.prefill_tokens, 9);
}

TEST(Session, SeededSamplingIsReproducible) {
  auto run = [](uint64_t seed) {
    auto codec = std::make_shared<ByteCodec>();
    // A flat-ish distribution: the fake's ramp plus no peak (next returns -1).
    auto e = std::make_unique<FakeExecutor>(codec->n_vocab(), 256,
                                            [](std::span<const int32_t>) { return -1; });
    Session s(std::move(e), codec);
    GenerateParams p;
    p.max_tokens = 20;
    p.ignore_eog = true;
    p.sampling.temperature = 0.01f;  // sharp over the 0.001-step ramp: still random
    p.sampling.top_k = 50;
    p.sampling.seed = seed;
    auto r = s.generate("hi", p);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r->stats.seed, seed);
    return r->tokens;
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

TEST(Session, StatsJsonHasStableKeys) {
  Fixture f("abcdef", 3);
  auto r = f.session->generate("hi", greedy(4));
  ASSERT_TRUE(r.ok());
  const std::string line = r->stats.to_json();
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(line);
  for (const char* k :
       {"load_ms", "ttft_ms", "prompt_tokens", "cached_tokens", "prefill_tokens", "prefill_ms",
        "prefill_tps", "decode_tokens", "decode_ms", "decode_tps", "generated_tokens", "total_ms",
        "peak_rss_bytes", "stop_reason", "seed", "n_ctx", "n_threads"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(j["stop_reason"], "max_tokens");
  EXPECT_EQ(j["prompt_tokens"], 3);
  EXPECT_EQ(j["decode_tokens"], 3);
  EXPECT_EQ(j["n_ctx"], 256);
  EXPECT_EQ(line.rfind("{\"load_ms\":", 0), 0u);
}

TEST(Session, RejectsEmptyPromptAndBadIds) {
  Fixture f("abc", 3);
  auto r = f.session->generate("", greedy(4));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  std::vector<int32_t> bad = {1, 100000};
  auto r2 = f.session->generate_tokens(bad, greedy(4));
  EXPECT_EQ(r2.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r2.status().message().find("100000"), std::string::npos);
}

}  // namespace
}  // namespace edgelm
