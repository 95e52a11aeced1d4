// Multi-turn chat (see chat.h).
#include "engine/chat.h"

namespace edgelm {

std::vector<std::string> chat_stop_strings(ChatFormat format) {
  switch (format) {
    case ChatFormat::kPlain:
      return {"\nUser:"};
    default:
      return {};
  }
}

Chat::Chat(Session& session, ChatFormat format, std::string system_prompt)
    : session_(session), format_(format) {
  if (!system_prompt.empty()) messages_.push_back({"system", std::move(system_prompt)});
}

std::string Chat::render(bool add_generation_prompt) const {
  return apply_chat_template(format_, messages_, add_generation_prompt);
}

void Chat::clear() {
  std::vector<ChatMessage> keep;
  if (!messages_.empty() && messages_.front().role == "system") keep.push_back(messages_.front());
  messages_ = std::move(keep);
}

StatusOr<GenerateResult> Chat::send(std::string_view user_text, GenerateParams params,
                                    const TokenCallback& on_token,
                                    const std::atomic<bool>* cancel) {
  messages_.push_back({"user", std::string(user_text)});
  const std::string prompt = render(/*add_generation_prompt=*/true);
  for (auto& s : chat_stop_strings(format_)) params.stop.push_back(std::move(s));
  params.parse_special = true;
  params.reuse_cache = true;
  auto r = session_.generate(prompt, params, on_token, cancel);
  if (!r.ok()) {
    messages_.pop_back();
    return r.status();
  }
  std::string reply = r->text;
  if (format_ == ChatFormat::kPlain) {
    while (!reply.empty() && reply.front() == ' ') reply.erase(0, 1);
  }
  messages_.push_back({"assistant", std::move(reply)});
  return r;
}

}  // namespace edgelm
