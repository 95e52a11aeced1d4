// Chat over the fake executor: messages recorded per turn, the plain format's "\nUser:" stop,
// the KV cache reused across turns, and an error leaving the conversation unchanged.
#include "engine/chat.h"

#include <gtest/gtest.h>

#include "fakes.h"

namespace edgelm {
namespace {

using testing::ByteCodec;
using testing::FakeExecutor;

// Replies "ok" + "\nUser: fake" (a runaway turn) after every "Assistant:".
FakeExecutor::NextFn replier() {
  return [](std::span<const int32_t> seq) -> int32_t {
    static const std::string reply = " ok\nUser: fake";
    static const std::string cue = "Assistant:";
    // Find the last cue and how far the reply has got.
    std::string text;
    for (int32_t id : seq) text += id >= 3 ? static_cast<char>(id - 3) : '\0';
    const size_t at = text.rfind(cue);
    if (at == std::string::npos) return ByteCodec::kEos;
    const size_t done = text.size() - (at + cue.size());
    return done < reply.size() ? ByteCodec::tok(static_cast<unsigned char>(reply[done]))
                               : ByteCodec::kEos;
  };
}

GenerateParams greedy() {
  GenerateParams p;
  p.max_tokens = 64;
  p.sampling = SamplingParams::greedy();
  return p;
}

TEST(Chat, PlainFormatTurnsReuseTheCache) {
  auto codec = std::make_shared<ByteCodec>();
  auto e = std::make_unique<FakeExecutor>(codec->n_vocab(), 512, replier());
  FakeExecutor* exec = e.get();
  Session session(std::move(e), codec);
  Chat chat(session, ChatFormat::kPlain, "Be brief.");
  ASSERT_EQ(chat.messages().size(), 1u);

  std::string streamed;
  auto r1 = chat.send("Hi", greedy(), [&](std::string_view t, int32_t) {
    streamed += t;
    return true;
  });
  ASSERT_TRUE(r1.ok()) << r1.status().to_string();
  EXPECT_EQ(r1->text, " ok");  // "\nUser:" is the format's stop string
  EXPECT_EQ(streamed, " ok");
  EXPECT_EQ(r1->stop_reason, StopReason::kStopString);
  ASSERT_EQ(chat.messages().size(), 3u);
  EXPECT_EQ(chat.messages()[1].role, "user");
  EXPECT_EQ(chat.messages()[2].role, "assistant");
  EXPECT_EQ(chat.messages()[2].content, "ok");

  const int evaluated_before = exec->evaluated;
  auto r2 = chat.send("Again", greedy());
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->text, " ok");
  // The whole first exchange up to "Assistant: ok" is reused.
  const std::string first = "System: Be brief.\nUser: Hi\nAssistant: ok";
  EXPECT_GE(r2->stats.cached_tokens, static_cast<int>(1 + first.size()));
  EXPECT_LT(exec->evaluated - evaluated_before, 40);
  EXPECT_EQ(chat.render(false),
            "System: Be brief.\nUser: Hi\nAssistant: ok\nUser: Again\nAssistant: ok\n");

  chat.clear();
  ASSERT_EQ(chat.messages().size(), 1u);
  EXPECT_EQ(chat.messages()[0].role, "system");
}

TEST(Chat, ErrorLeavesConversationUnchanged) {
  auto codec = std::make_shared<ByteCodec>();
  auto e = std::make_unique<FakeExecutor>(codec->n_vocab(), 40, replier());
  Session session(std::move(e), codec);
  Chat chat(session, ChatFormat::kPlain);
  auto r1 = chat.send("Hi", greedy());
  ASSERT_TRUE(r1.ok());
  ASSERT_EQ(chat.messages().size(), 2u);
  auto r2 = chat.send(std::string(60, 'x'), greedy());
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(chat.messages().size(), 2u);
}

TEST(Chat, FormatStopStrings) {
  EXPECT_EQ(chat_stop_strings(ChatFormat::kPlain), std::vector<std::string>{"\nUser:"});
  EXPECT_TRUE(chat_stop_strings(ChatFormat::kChatMl).empty());
}

}  // namespace
}  // namespace edgelm
