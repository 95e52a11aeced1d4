#include "tokenizer/chat-template.h"

namespace edgelm {
namespace {

bool contains(std::string_view s, std::string_view needle) {
  return s.find(needle) != std::string_view::npos;
}

std::string trim(std::string_view s) {
  const char* ws = " \t\n\r\v\f";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return std::string();
  size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

std::string capitalize(std::string_view role) {
  std::string r(role);
  if (!r.empty() && r[0] >= 'a' && r[0] <= 'z') r[0] = static_cast<char>(r[0] - 32);
  return r;
}

}  // namespace

ChatFormat detect_chat_format(std::string_view t) {
  if (contains(t, "<|im_start|>")) return ChatFormat::kChatMl;
  if (contains(t, "<|start_header_id|>") && contains(t, "<|end_header_id|>"))
    return ChatFormat::kLlama3;
  if (contains(t, "<|assistant|>") && contains(t, "<|end|>")) return ChatFormat::kPhi3;
  if (contains(t, "[INST]")) return ChatFormat::kLlama2;
  return ChatFormat::kPlain;
}

std::optional<ChatFormat> chat_format_from_name(std::string_view name) {
  if (name == "chatml") return ChatFormat::kChatMl;
  if (name == "llama3") return ChatFormat::kLlama3;
  if (name == "llama2") return ChatFormat::kLlama2;
  if (name == "phi3") return ChatFormat::kPhi3;
  if (name == "plain") return ChatFormat::kPlain;
  return std::nullopt;
}

const char* chat_format_name(ChatFormat f) {
  switch (f) {
    case ChatFormat::kChatMl:
      return "chatml";
    case ChatFormat::kLlama3:
      return "llama3";
    case ChatFormat::kLlama2:
      return "llama2";
    case ChatFormat::kPhi3:
      return "phi3";
    case ChatFormat::kPlain:
      return "plain";
  }
  return "?";
}

std::string apply_chat_template(ChatFormat format, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) {
  std::string out;
  switch (format) {
    case ChatFormat::kChatMl:
      for (const auto& m : messages)
        out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;

    case ChatFormat::kLlama3:
      for (const auto& m : messages)
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) +
               "<|eot_id|>";
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;

    case ChatFormat::kLlama2: {
      // The system prompt goes inside the first [INST] block; each finished exchange closes
      // with </s> and the next opens with <s>[INST] (the first BOS comes from the tokenizer).
      bool inside_turn = true;
      out += "[INST] ";
      for (const auto& m : messages) {
        if (!inside_turn) {
          inside_turn = true;
          out += "<s>[INST] ";
        }
        if (m.role == "system") {
          out += "<<SYS>>\n" + m.content + "\n<</SYS>>\n\n";
        } else if (m.role == "user") {
          out += m.content + " [/INST]";
        } else {
          out += m.content + "</s>";
          inside_turn = false;
        }
      }
      // The generation prompt is implicit: the model answers right after " [/INST]".
      break;
    }

    case ChatFormat::kPhi3:
      for (const auto& m : messages) out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
      if (add_generation_prompt) out += "<|assistant|>\n";
      break;

    case ChatFormat::kPlain:
      for (const auto& m : messages) out += capitalize(m.role) + ": " + m.content + "\n";
      if (add_generation_prompt) out += "Assistant:";
      break;
  }
  return out;
}

}  // namespace edgelm
