// Vocabulary loading, special-token handling, partitioning and decoding. The SPM and BPE merge
// loops live in spm.cpp and bpe.cpp.
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <initializer_list>

#include "base/log.h"
#include "tokenizer/stream-decoder.h"
#include "tokenizer/unicode.h"

namespace edgelm {
namespace {

// GGUF token types (llama.cpp's llama_token_type).
enum GgufTokenType {
  kTypeUndefined = 0,
  kTypeNormal = 1,
  kTypeUnknown = 2,
  kTypeControl = 3,
  kTypeUserDefined = 4,
  kTypeUnused = 5,
  kTypeByte = 6,
};

uint32_t attr_from_type(int64_t t) {
  switch (t) {
    case kTypeUnknown:
      return kAttrUnknown;
    case kTypeUnused:
      return kAttrUnused;
    case kTypeNormal:
      return kAttrNormal;
    case kTypeControl:
      return kAttrControl;
    case kTypeUserDefined:
      return kAttrUserDefined;
    case kTypeByte:
      return kAttrByte;
    default:
      return kAttrUndefined;
  }
}

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool one_of(std::string_view s, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), s) != names.end();
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    size_t m = s.find(from, pos);
    if (m == std::string::npos) break;
    out.append(s, pos, m - pos);
    out.append(to);
    pos = m + from.size();
  }
  out.append(s, pos, std::string::npos);
  s = std::move(out);
}

constexpr std::string_view kSpmSpace = "\xe2\x96\x81";  // U+2581 '▁'

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<0xAB>" -> 0xAB (llama.cpp reads text[3..4] as hex).
int byte_token_value(const std::string& text) {
  if (text.size() < 5) return -1;
  int hi = hex_value(text[3]), lo = hex_value(text[4]);
  if (hi < 0) return -1;
  if (lo < 0) return hi;  // strtol stops at the first non-hex digit
  return hi * 16 + lo;
}

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const GgufFile& file) {
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  Status st = tok->load(file);
  if (!st.ok()) return st.with_context(fmt::format("loading tokenizer from {}", file.path()));
  return tok;
}

Status Tokenizer::load(const GgufFile& file) {
  ASSIGN_OR_RETURN(std::string model, file.require_string("tokenizer.ggml.model"));
  const std::string pre = file.get_string("tokenizer.ggml.pre").value_or("");

  if (model == "llama") {
    type_ = VocabType::kSpm;
    bos_ = 1;
    eos_ = 2;
    unk_ = 0;
    pre_type_ = PreTokenizerType::kDefault;
    add_space_prefix_ = true;
    add_bos_ = true;
    add_eos_ = false;
  } else if (model == "gpt2") {
    type_ = VocabType::kBpe;
    bos_ = 11;
    eos_ = 11;
    add_space_prefix_ = false;
    if (pre.empty() || pre == "default") {
      if (pre.empty()) EDGELM_LOG_WARN("{}: no tokenizer.ggml.pre, using 'default'", file.path());
      pre_type_ = PreTokenizerType::kDefault;
    } else if (one_of(pre, {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                            "midm-2.0", "lfm2"})) {
      pre_type_ = PreTokenizerType::kLlama3;
      ignore_merges_ = true;
      add_bos_ = true;
    } else if (one_of(pre, {"dbrx", "smaug-bpe"})) {
      pre_type_ = PreTokenizerType::kLlama3;
    } else if (one_of(pre, {"chatglm-bpe", "glm4"})) {
      pre_type_ = PreTokenizerType::kLlama3;
      bos_ = -1;
    } else if (one_of(pre, {"gpt-2", "gpt2", "phi-2", "jina-es", "jina-de", "gigachat",
                            "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "mpt", "olmo", "jais",
                            "trillion", "granite-docling", "exaone4"})) {
      pre_type_ = PreTokenizerType::kGpt2;
    } else if (one_of(pre, {"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2", "hunyuan",
                            "solar-open", "kormo"})) {
      pre_type_ = PreTokenizerType::kQwen2;
    } else if (one_of(pre, {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone",
                            "minerva-7b"})) {
      pre_type_ = PreTokenizerType::kSmollm;
    } else {
      return Status::unimplemented(fmt::format(
          "tokenizer.ggml.pre = '{}' is not supported (supported: llama3/llama-bpe, qwen2, "
          "gpt-2, smollm, default)",
          pre));
    }
  } else {
    return Status::unimplemented(fmt::format(
        "tokenizer.ggml.model = '{}' is not supported (expected 'llama' or 'gpt2')", model));
  }

  if (auto v = file.get_bool("tokenizer.ggml.add_space_prefix")) add_space_prefix_ = *v;

  RETURN_IF_ERROR(load_vocab(file));

  // Special token ids from the file; defaults that fall outside the vocabulary are disabled.
  const std::pair<const char*, int32_t*> ids[] = {
      {"tokenizer.ggml.bos_token_id", &bos_},     {"tokenizer.ggml.eos_token_id", &eos_},
      {"tokenizer.ggml.eot_token_id", &eot_},     {"tokenizer.ggml.eom_token_id", &eom_},
      {"tokenizer.ggml.unknown_token_id", &unk_}, {"tokenizer.ggml.seperator_token_id", &sep_},
      {"tokenizer.ggml.padding_token_id", &pad_},
  };
  for (const auto& [key, id] : ids) {
    if (*id >= n_vocab()) *id = -1;
    if (auto v = file.get_uint(key)) {
      if (*v < static_cast<uint64_t>(n_vocab())) {
        *id = static_cast<int32_t>(*v);
      } else {
        EDGELM_LOG_WARN("{}: {} = {} is outside the vocabulary of {} tokens; keeping {}",
                        file.path(), key, *v, n_vocab(), *id);
      }
    }
  }
  if (auto v = file.get_bool("tokenizer.ggml.add_bos_token")) add_bos_ = *v;
  if (auto v = file.get_bool("tokenizer.ggml.add_eos_token")) add_eos_ = *v;
  if (add_bos_ && bos_ < 0)
    return Status::invalid_argument("tokenizer.ggml.add_bos_token is true but there is no BOS id");
  if (add_eos_ && eos_ < 0)
    return Status::invalid_argument("tokenizer.ggml.add_eos_token is true but there is no EOS id");

  chat_template_ = file.get_string("tokenizer.chat_template").value_or("");

  detect_special_tokens();

  // Special tokens, longest first (the order llama.cpp partitions in).
  special_tokens_.clear();
  for (int32_t id = 0; id < n_vocab(); ++id) {
    if (tokens_[id].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown))
      special_tokens_.push_back(id);
  }
  std::sort(special_tokens_.begin(), special_tokens_.end(),
            [&](int32_t a, int32_t b) { return tokens_[a].text.size() > tokens_[b].text.size(); });

  pieces_.resize(tokens_.size());
  for (int32_t id = 0; id < n_vocab(); ++id) pieces_[id] = compute_piece(id);

  set_model_specific_attrs(file);
  return Status::ok_status();
}

Status Tokenizer::load_vocab(const GgufFile& file) {
  const GgufValue* toks = file.find("tokenizer.ggml.tokens");
  if (!toks) return Status::not_found("missing key tokenizer.ggml.tokens");
  if (toks->type != GgufType::kArray || toks->array_type != GgufType::kString)
    return Status::invalid_argument(fmt::format(
        "tokenizer.ggml.tokens: expected array of string, found {}", toks->to_string()));
  const size_t n = toks->strings.size();
  if (n == 0) return Status::invalid_argument("tokenizer.ggml.tokens is empty");
  if (n > static_cast<size_t>(INT32_MAX))
    return Status::invalid_argument(fmt::format("tokenizer.ggml.tokens: {} tokens is too many", n));

  const GgufValue* scores = file.find("tokenizer.ggml.scores");
  if (scores) {
    if (scores->type != GgufType::kArray ||
        (scores->array_type != GgufType::kF32 && scores->array_type != GgufType::kI32))
      return Status::invalid_argument(fmt::format(
          "tokenizer.ggml.scores: expected array of f32, found {}", scores->to_string()));
    if (scores->array_count < n)
      return Status::invalid_argument(fmt::format(
          "tokenizer.ggml.scores: expected {} entries, found {}", n, scores->array_count));
  }
  const GgufValue* types = file.find("tokenizer.ggml.token_type");
  if (types) {
    if (types->type != GgufType::kArray ||
        !(types->array_type == GgufType::kI32 || types->array_type == GgufType::kU32))
      return Status::invalid_argument(fmt::format(
          "tokenizer.ggml.token_type: expected array of i32, found {}", types->to_string()));
    if (types->array_count < n)
      return Status::invalid_argument(fmt::format(
          "tokenizer.ggml.token_type: expected {} entries, found {}", n, types->array_count));
  }

  tokens_.resize(n);
  token_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Token& t = tokens_[i];
    t.text = std::string(toks->strings[i]);
    if (t.text.empty()) t.text = fmt::format("[EMPTY_{}]", i);
    t.score = scores ? static_cast<float>(scores->array_f64(i)) : 0.0f;
    t.attr = types ? attr_from_type(types->array_i64(i)) : kAttrNormal;
    if (!token_to_id_.insert(t.text, static_cast<int32_t>(i))) {
      EDGELM_LOG_WARN("{}: duplicate token '{}' at ids {} and {}; the text maps to {}", file.path(),
                      t.text, token_to_id_.find(t.text), i, i);
      token_to_id_.insert(t.text, static_cast<int32_t>(i), /*overwrite=*/true);
    }
  }

  if (type_ == VocabType::kBpe) {
    const GgufValue* merges = file.find("tokenizer.ggml.merges");
    if (!merges) return Status::not_found("missing key tokenizer.ggml.merges (BPE vocabulary)");
    if (merges->type != GgufType::kArray || merges->array_type != GgufType::kString)
      return Status::invalid_argument(fmt::format(
          "tokenizer.ggml.merges: expected array of string, found {}", merges->to_string()));
    bpe_ranks_.reserve(merges->strings.size());
    for (size_t i = 0; i < merges->strings.size(); ++i) {
      std::string_view m = merges->strings[i];
      size_t pos = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
      if (pos == std::string_view::npos) continue;  // never matches a real pair
      bpe_ranks_.insert(m, static_cast<int32_t>(i));
    }
  }
  return Status::ok_status();
}

// EOT/EOM/FIM tokens found by their text, end-of-generation set, and the attribute fixes
// llama.cpp applies (control-looking tokens become control; "unused" control tokens).
void Tokenizer::detect_special_tokens() {
  auto find_first = [&](std::initializer_list<std::string_view> names) -> int32_t {
    for (std::string_view n : names) {
      if (int32_t id = token_to_id_.find(n); id >= 0) return id;
    }
    return -1;
  };
  auto make_control = [&](int32_t id) {
    if (id >= 0) tokens_[id].attr |= kAttrControl;
  };
  auto detect = [&](int32_t& slot, std::initializer_list<std::string_view> names) {
    if (slot >= 0) return;
    slot = find_first(names);
    make_control(slot);
  };
  detect(eot_, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                "<\xef\xbd\x9c"
                "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                "<end_of_utterance>"});
  detect(eom_, {"<|eom_id|>"});
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1;
  detect(fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                   "<\xef\xbd\x9c"
                   "fim\xe2\x96\x81"
                   "begin\xef\xbd\x9c>",
                   "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"});
  detect(fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                   "<\xef\xbd\x9c"
                   "fim\xe2\x96\x81hole\xef\xbd\x9c>",
                   "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"});
  detect(fim_mid, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                   "<\xef\xbd\x9c"
                   "fim\xe2\x96\x81"
                   "end\xef\xbd\x9c>",
                   "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"});
  detect(fim_pad_, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
  detect(fim_rep_, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
  detect(fim_sep_, {"<|file_sep|>"});

  for (auto& t : tokens_) {
    if ((t.attr & kAttrControl) && t.text.find("unused") != std::string::npos)
      t.attr |= kAttrUnused;
  }

  std::vector<int32_t> eog;
  for (int32_t id : {fim_pad_, fim_rep_, fim_sep_, eos_, eot_, eom_})
    if (id >= 0) eog.push_back(id);
  for (std::string_view name : {"<|eot_id|>",
                                "<|im_end|>",
                                "<|end|>",
                                "<|return|>",
                                "<|call|>",
                                "<|flush|>",
                                "<|calls|>",
                                "<end_of_turn>",
                                "<|endoftext|>",
                                "</s>",
                                "<|eom_id|>",
                                "<EOT>",
                                "_<EOT>",
                                "[EOT]",
                                "[EOS]",
                                "<|end_of_text|>",
                                "<end_of_utterance>",
                                "<eos>",
                                "<turn|>",
                                "<|tool_response>"}) {
    if (int32_t id = token_to_id_.find(name); id >= 0) {
      eog.push_back(id);
      make_control(id);
    }
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());

  auto has = [&](std::string_view name) {
    const int32_t id = token_to_id_.find(name);
    return id >= 0 && std::binary_search(eog.begin(), eog.end(), id);
  };
  auto drop = [&](std::string_view name, uint32_t new_attr) {
    const int32_t id = token_to_id_.find(name);
    eog.erase(std::find(eog.begin(), eog.end(), id));
    tokens_[id].attr = new_attr;
  };
  // Harmony-style vocabularies: "<|end|>" ends a message, not the generation.
  if (has("<|end|>") &&
      ((has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>")))) {
    drop("<|end|>", kAttrUserDefined);
  }
  if (has("<|tool_response>") && has("</s>")) drop("</s>", kAttrNormal);
  eog_ids_ = std::move(eog);
}

void Tokenizer::set_model_specific_attrs(const GgufFile& file) {
  std::string name = file.get_string("general.name").value_or("");
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto set = [&](std::string_view text, uint32_t attr, bool on) {
    const int32_t id = token_to_id_.find(text);
    if (id < 0) return;
    uint32_t& a = tokens_[id].attr;
    a = on ? (a | attr) : (a & ~attr);
  };
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (int32_t id : special_tokens_) tokens_[id].attr |= kAttrRstrip;
    set("</s>", kAttrRstrip, true);
    for (std::string_view t : {"<unk>", "<s>", "<|endoftext|>"}) set(t, kAttrRstrip, false);
  }
}

std::string Tokenizer::compute_piece(int32_t id) const {
  const Token& t = tokens_[id];
  if (t.attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return t.text;
  if (t.attr & kAttrNormal) {
    if (type_ == VocabType::kSpm) {
      std::string s = t.text;
      replace_all(s, kSpmSpace, " ");
      return s;
    }
    // Byte-level BPE: every codepoint stands for one byte.
    std::string out;
    size_t off = 0;
    while (off < t.text.size()) {
      uint32_t cpt = unicode::decode_one(t.text, off);
      if (auto b = unicode::bpe_cpt_to_byte(cpt)) {
        out.push_back(static_cast<char>(*b));
      } else {
        std::string enc = unicode::encode_utf8(cpt);
        out += "[UNK_BYTE_0x";
        for (unsigned char c : enc) out += fmt::format("{:02x}", c);
        out += t.text + "]";
      }
    }
    return out;
  }
  if (t.attr & kAttrByte) {
    int b = byte_token_value(t.text);
    return b >= 0 ? std::string(1, static_cast<char>(b)) : std::string();
  }
  return std::string();
}

const std::string& Tokenizer::token_text(int32_t id) const {
  static const std::string kEmpty;
  return (id >= 0 && id < n_vocab()) ? tokens_[id].text : kEmpty;
}

uint32_t Tokenizer::token_attr(int32_t id) const {
  return (id >= 0 && id < n_vocab()) ? tokens_[id].attr : kAttrUndefined;
}

bool Tokenizer::is_eog(int32_t id) const {
  return id >= 0 && std::binary_search(eog_ids_.begin(), eog_ids_.end(), id);
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  int32_t id = lookup(text);
  if (id < 0) return std::nullopt;
  return id;
}

int32_t Tokenizer::lookup(std::string_view text) const { return token_to_id_.find(text); }

std::string Tokenizer::token_to_piece(int32_t id, bool special) const {
  if (id < 0 || id >= n_vocab()) return std::string();
  if (!special && (tokens_[id].attr & (kAttrUnknown | kAttrControl))) return std::string();
  return pieces_[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool special) const {
  return sanitize_utf8(decode_bytes(ids, special));
}

std::string Tokenizer::decode_bytes(std::span<const int32_t> ids, bool special) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= n_vocab()) continue;
    if (!special && (tokens_[id].attr & (kAttrUnknown | kAttrControl))) continue;
    out += pieces_[id];
  }
  return out;
}

// Splits the text around special tokens, longest token first; each occurrence becomes a token
// fragment (llama.cpp's tokenizer_st_partition, including lstrip/rstrip of neighbouring text).
std::vector<Tokenizer::Fragment> Tokenizer::partition(std::string_view text,
                                                      bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({false, -1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : special_tokens_) {
    const Token& tok = tokens_[id];
    if (!parse_special && (tok.attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string& tt = tok.text;
    if (text.find(tt) == std::string_view::npos) continue;  // fast path
    next.clear();
    for (const Fragment& f : frags) {
      if (f.is_token) {
        next.push_back(f);
        continue;
      }
      size_t base = f.offset, len = f.length;
      while (len > 0) {
        size_t m = text.substr(0, base + len).find(tt, base);
        if (m == std::string_view::npos) {
          next.push_back({false, -1, base, len});
          break;
        }
        if (m > base) {
          size_t left = m - base;
          if (tok.attr & kAttrLstrip)
            while (left > 0 && is_ascii_space(text[base + left - 1])) --left;
          if (left > 0) next.push_back({false, -1, base, left});
        }
        next.push_back({true, id, 0, 0});
        size_t rbase = m + tt.size();
        size_t rlen = base + len - rbase;
        if (tok.attr & kAttrRstrip) {
          while (rlen > 0 && is_ascii_space(text[rbase])) {
            ++rbase;
            --rlen;
          }
        }
        base = rbase;
        len = rlen;
      }
    }
    frags.swap(next);
  }
  return frags;
}

StatusOr<std::vector<int32_t>> Tokenizer::encode(std::string_view text, bool add_special,
                                                 bool parse_special) const {
  std::vector<int32_t> out;
  const std::vector<Fragment> frags = partition(text, parse_special);
  if (add_special && add_bos_) out.push_back(bos_);
  if (type_ == VocabType::kSpm) {
    bool prev_special = true;  // a space prefix goes before the first text
    for (const Fragment& f : frags) {
      if (f.is_token) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      std::string s;
      if (add_space_prefix_ && prev_special) s = " ";
      s.append(text.substr(f.offset, f.length));
      replace_all(s, " ", kSpmSpace);
      RETURN_IF_ERROR(encode_spm(s, out));
      prev_special = false;
    }
  } else {
    for (const Fragment& f : frags) {
      if (f.is_token) {
        out.push_back(f.token);
      } else {
        encode_bpe(text.substr(f.offset, f.length), out);
      }
    }
  }
  if (add_special && add_eos_) out.push_back(eos_);
  return out;
}

}  // namespace edgelm
