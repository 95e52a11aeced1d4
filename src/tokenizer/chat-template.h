// Chat prompt formats. The GGUF's tokenizer.chat_template (Jinja text) is not executed; its
// format is recognised by marker strings and rendered by a fixed C++ formatter, as llama.cpp's
// built-in templates do. The output contains special-token text ("<|im_start|>" ...), so encode
// it with parse_special = true.
//
//   ChatFormat fmt = detect_chat_format(tokenizer.chat_template());
//   std::string prompt = apply_chat_template(fmt, {{"system", "Be brief."}, {"user", "Hi"}},
//                                            /*add_generation_prompt=*/true);
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgelm {

enum class ChatFormat {
  kChatMl,  // <|im_start|>role\ncontent<|im_end|>\n            (Qwen, SmolLM, many others)
  kLlama3,  // <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
  kLlama2,  // [INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST]answer</s><s>[INST] ...
  kPhi3,    // <|role|>\ncontent<|end|>\n
  kPlain,   // System: ...\nUser: ...\nAssistant: ...
};

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (others are passed through as roles)
  std::string content;
};

// Recognises the format of a Jinja chat template; kPlain when empty or unknown.
ChatFormat detect_chat_format(std::string_view jinja_template);
// Parses a format name: "chatml", "llama3", "llama2", "phi3", "plain".
std::optional<ChatFormat> chat_format_from_name(std::string_view name);
const char* chat_format_name(ChatFormat format);

// Renders the conversation. BOS is not included (the tokenizer adds it with add_special).
// add_generation_prompt appends the opening of an assistant turn.
std::string apply_chat_template(ChatFormat format, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt);

}  // namespace edgelm
