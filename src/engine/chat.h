// Multi-turn chat over a Session: keeps the messages, renders the whole conversation with the
// model's chat format each turn and lets the Session reuse the KV cache for the shared prefix
// (earlier turns are not evaluated again).
//
//   Chat chat(*session, engine->chat_format(), "You are terse.");
//   auto r = chat.send("Hello!", gp, on_token);      // r->text: the assistant's reply
//   auto r2 = chat.send("And then?", gp, on_token);  // only the new turn is prefilled
#pragma once

#include <atomic>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/session.h"
#include "tokenizer/chat-template.h"

namespace edgelm {

// Stop strings a format needs besides its end-of-turn tokens (kPlain: "\nUser:").
std::vector<std::string> chat_stop_strings(ChatFormat format);

class Chat {
 public:
  // `session` must outlive the Chat. An empty system prompt adds no system message.
  Chat(Session& session, ChatFormat format, std::string system_prompt = "");

  // Adds the user message, generates the reply (params.stop gets the format's stop strings
  // added; the prompt is parsed with special tokens) and records it. On error the user message
  // is dropped again and the conversation is unchanged.
  StatusOr<GenerateResult> send(std::string_view user_text, GenerateParams params,
                                const TokenCallback& on_token = {},
                                const std::atomic<bool>* cancel = nullptr);

  const std::vector<ChatMessage>& messages() const { return messages_; }
  ChatFormat format() const { return format_; }
  // The text the next send() would render before the new user message.
  std::string render(bool add_generation_prompt) const;
  // Forgets the turns (keeps the system prompt).
  void clear();

 private:
  Session& session_;
  ChatFormat format_;
  std::vector<ChatMessage> messages_;
};

}  // namespace edgelm
