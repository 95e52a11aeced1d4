// OpenAI request parsing and validation (see request.h).
#include "server/request.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace edgelm::server {

namespace {

using nlohmann::json;

ApiError bad(std::string message, std::string param = "", std::string code = "") {
  ApiError e;
  e.http_status = 400;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

// Deepest nesting of [ and { outside strings (nlohmann's parser is recursive-free, but the
// value's destructor and our walk are not: refuse absurd depths before parsing).
int json_depth(std::string_view s, int limit) {
  int depth = 0;
  int max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) max_depth = depth;
      if (max_depth > limit) return max_depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    case json::value_t::binary:
      return "binary";
    case json::value_t::discarded:
      return "discarded";
    default:
      return "number";
  }
}

ApiError wrong_type(const std::string& param, const char* expected, const json& found) {
  return bad(fmt::format("Invalid type for '{}': expected {}, but got {}.", param, expected,
                         type_name(found)),
             param, "invalid_type");
}

// A number in [lo, hi] (null/absent keeps the default).
std::optional<ApiError> get_float(const json& body, const char* key, float lo, float hi,
                                  float& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return wrong_type(key, "a number", *it);
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    return bad(fmt::format("Invalid value for '{}': {} is not between {} and {}.", key, it->dump(),
                           lo, hi),
               key, "invalid_value");
  }
  out = static_cast<float>(v);
  return std::nullopt;
}

std::optional<ApiError> get_bool(const json& body, const char* key, bool& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return wrong_type(key, "a boolean", *it);
  out = it->get<bool>();
  return std::nullopt;
}

// Text of a message's content: a string, null, or an array of {"type":"text","text":...}.
std::optional<ApiError> content_text(const json& content, const std::string& param,
                                     std::string& out) {
  if (content.is_null()) return std::nullopt;
  if (content.is_string()) {
    out = content.get<std::string>();
    return std::nullopt;
  }
  if (!content.is_array()) return wrong_type(param, "a string or an array of parts", content);
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string pp = fmt::format("{}[{}]", param, i);
    if (!part.is_object()) return wrong_type(pp, "an object", part);
    auto type = part.find("type");
    if (type == part.end() || !type->is_string()) {
      return bad(fmt::format("Missing or invalid '{}.type'.", pp), pp + ".type");
    }
    if (type->get<std::string>() != "text") {
      return bad(fmt::format("Unsupported content part type '{}' in '{}': only 'text' parts are "
                             "supported.",
                             type->get<std::string>(), pp),
                 pp + ".type", "unsupported_value");
    }
    auto text = part.find("text");
    if (text == part.end() || !text->is_string()) {
      return bad(fmt::format("Missing or invalid '{}.text'.", pp), pp + ".text");
    }
    out += text->get<std::string>();
  }
  return std::nullopt;
}

std::optional<ApiError> parse_messages(const json& body, const RequestLimits& limits,
                                       CompletionRequest& req) {
  auto it = body.find("messages");
  if (it == body.end()) return bad("Missing required parameter: 'messages'.", "messages");
  if (!it->is_array()) return wrong_type("messages", "an array", *it);
  if (it->empty()) {
    return bad("Invalid 'messages': empty array. Expected an array with minimum length 1.",
               "messages", "empty_array");
  }
  if (it->size() > limits.max_messages) {
    return bad(fmt::format("Too many messages: {} (at most {}).", it->size(), limits.max_messages),
               "messages");
  }
  static const char* kRoles[] = {"system", "developer", "user", "assistant", "tool"};
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string param = fmt::format("messages[{}]", i);
    if (!m.is_object()) return wrong_type(param, "an object", m);
    auto role = m.find("role");
    if (role == m.end()) {
      return bad(fmt::format("Missing required parameter: '{}.role'.", param), param + ".role");
    }
    if (!role->is_string()) return wrong_type(param + ".role", "a string", *role);
    std::string r = role->get<std::string>();
    bool known = false;
    for (const char* k : kRoles) known = known || r == k;
    if (!known) {
      return bad(fmt::format("Invalid value: '{}'. Supported values are: 'system', 'developer', "
                             "'user', 'assistant' and 'tool'.",
                             r),
                 param + ".role", "invalid_value");
    }
    if (r == "developer") r = "system";
    ChatMessage msg{r, ""};
    auto content = m.find("content");
    if (content == m.end() && r != "assistant") {
      return bad(fmt::format("Missing required parameter: '{}.content'.", param),
                 param + ".content");
    }
    if (content != m.end()) {
      if (auto e = content_text(*content, param + ".content", msg.content)) return e;
    }
    req.messages.push_back(std::move(msg));
  }
  return std::nullopt;
}

std::optional<ApiError> parse_prompt(const json& body, CompletionRequest& req) {
  auto it = body.find("prompt");
  if (it == body.end()) return bad("Missing required parameter: 'prompt'.", "prompt");
  if (it->is_string()) {
    req.prompt = it->get<std::string>();
  } else if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
    req.prompt = (*it)[0].get<std::string>();
  } else if (it->is_array() && it->size() > 1 && (*it)[0].is_string()) {
    return bad("Only one prompt per request is supported (got an array of several).", "prompt",
               "unsupported_value");
  } else if (it->is_array() && !it->empty() && (*it)[0].is_number()) {
    return bad("Token-id prompts are not supported: give the prompt as a string.", "prompt",
               "unsupported_value");
  } else {
    return wrong_type("prompt", "a string", *it);
  }
  if (req.prompt.empty()) return bad("Invalid 'prompt': the prompt is empty.", "prompt");
  return std::nullopt;
}

std::optional<ApiError> parse_stop(const json& body, const RequestLimits& limits,
                                   CompletionRequest& req) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return std::nullopt;
  std::vector<std::string> stop;
  if (it->is_string()) {
    stop.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    if (it->size() > limits.max_stop) {
      return bad(fmt::format("Invalid 'stop': at most {} stop sequences.", limits.max_stop),
                 "stop");
    }
    for (size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string()) {
        return wrong_type(fmt::format("stop[{}]", i), "a string", (*it)[i]);
      }
      stop.push_back((*it)[i].get<std::string>());
    }
  } else {
    return wrong_type("stop", "a string or an array of strings", *it);
  }
  for (const auto& s : stop) {
    if (s.size() > limits.max_stop_bytes) {
      return bad(fmt::format("Invalid 'stop': a stop sequence is longer than {} bytes.",
                             limits.max_stop_bytes),
                 "stop");
    }
    if (!s.empty()) req.stop.push_back(s);
  }
  return std::nullopt;
}

std::optional<ApiError> parse_fields(Endpoint endpoint, const json& body,
                                     const RequestLimits& limits, CompletionRequest& req) {
  // model
  auto model = body.find("model");
  if (model == body.end()) return bad("Missing required parameter: 'model'.", "model");
  if (!model->is_string()) return wrong_type("model", "a string", *model);
  req.model = model->get<std::string>();

  if (endpoint == Endpoint::kChat) {
    if (auto e = parse_messages(body, limits, req)) return e;
  } else {
    if (auto e = parse_prompt(body, req)) return e;
    if (auto e = get_bool(body, "echo", req.echo)) return e;
  }

  if (auto e = get_bool(body, "stream", req.stream)) return e;
  auto so = body.find("stream_options");
  if (so != body.end() && !so->is_null()) {
    if (!so->is_object()) return wrong_type("stream_options", "an object", *so);
    if (!req.stream) {
      return bad("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                 "stream_options");
    }
    if (auto e = get_bool(*so, "include_usage", req.include_usage)) {
      e->param = "stream_options.include_usage";
      return e;
    }
  }

  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) continue;
    if (!it->is_number_integer()) return wrong_type(key, "an integer", *it);
    const int64_t v = it->get<int64_t>();
    if (v < 1 || v > (1 << 24)) {
      return bad(fmt::format("Invalid '{}': integer below minimum value. Expected a value >= 1 "
                             "(and at most {}), but got {} instead.",
                             key, 1 << 24, v),
                 key, "invalid_value");
    }
    req.max_tokens = static_cast<int>(v);
  }

  if (auto e = get_float(body, "temperature", 0.0f, 2.0f, req.temperature)) return e;
  if (auto e = get_float(body, "top_p", 0.0f, 1.0f, req.top_p)) return e;
  if (auto e = get_float(body, "frequency_penalty", -2.0f, 2.0f, req.frequency_penalty)) return e;
  if (auto e = get_float(body, "presence_penalty", -2.0f, 2.0f, req.presence_penalty)) return e;

  auto seed = body.find("seed");
  if (seed != body.end() && !seed->is_null()) {
    if (!seed->is_number_integer()) return wrong_type("seed", "an integer", *seed);
    req.seed = seed->is_number_unsigned() ? seed->get<uint64_t>()
                                          : static_cast<uint64_t>(seed->get<int64_t>());
  }

  auto n = body.find("n");
  if (n != body.end() && !n->is_null()) {
    if (!n->is_number_integer()) return wrong_type("n", "an integer", *n);
    if (n->get<int64_t>() != 1) {
      return bad("Only n = 1 is supported.", "n", "unsupported_value");
    }
  }

  if (auto e = parse_stop(body, limits, req)) return e;

  for (const char* key : {"logprobs", "top_logprobs", "logit_bias", "tools", "functions",
                          "response_format", "best_of", "suffix"}) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) continue;
    const bool trivial = (it->is_boolean() && !it->get<bool>()) ||
                         ((it->is_array() || it->is_object()) && it->empty()) ||
                         (std::string_view(key) == "best_of" && it->is_number_integer() &&
                          it->get<int64_t>() == 1) ||
                         (std::string_view(key) == "response_format" && it->is_object() &&
                          it->value("type", json()) == json("text"));
    if (!trivial) {
      return bad(fmt::format("The '{}' parameter is not supported by this server.", key), key,
                 "unsupported_parameter");
    }
  }

  auto user = body.find("user");
  if (user != body.end() && !user->is_null()) {
    if (!user->is_string()) return wrong_type("user", "a string", *user);
    req.user = user->get<std::string>();
  }
  return std::nullopt;
}

}  // namespace

std::string ApiError::to_json() const {
  json e = {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}};
  return json{{"error", e}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

ApiError api_error_from_status(const Status& status) {
  ApiError e;
  e.message = status.message();
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      e.http_status = 400;
      break;
    case StatusCode::kOutOfRange:
      e.http_status = 400;
      e.code = "context_length_exceeded";
      e.param = "messages";
      break;
    case StatusCode::kNotFound:
      e.http_status = 404;
      e.code = "model_not_found";
      e.param = "model";
      break;
    case StatusCode::kUnimplemented:
      e.http_status = 400;
      e.code = "unsupported_value";
      break;
    case StatusCode::kResourceExhausted:
      e.http_status = 503;
      e.type = "server_overloaded";
      e.code = "queue_full";
      break;
    case StatusCode::kCancelled:
      e.http_status = 499;
      e.type = "cancelled";
      break;
    case StatusCode::kIo:
      e.http_status = 502;
      e.type = "upstream_error";
      break;
    default:
      e.http_status = 500;
      e.type = "server_error";
      break;
  }
  return e;
}

ParseResult parse_request(Endpoint endpoint, std::string_view body, const RequestLimits& limits) {
  ParseResult r;
  r.request.endpoint = endpoint;
  if (body.size() > limits.max_body_bytes) {
    ApiError e = bad(fmt::format("Request body is {} bytes; the limit is {} bytes.", body.size(),
                                 limits.max_body_bytes),
                     "", "request_too_large");
    e.http_status = 413;
    r.error = e;
    return r;
  }
  if (json_depth(body, limits.max_depth) > limits.max_depth) {
    r.error = bad(fmt::format("Invalid JSON body: nested deeper than {} levels.", limits.max_depth),
                  "", "invalid_json");
    return r;
  }
  json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    r.error =
        bad("We could not parse the JSON body of your request. (HINT: This likely means you aren't "
            "using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
            "", "invalid_json");
    return r;
  }
  if (!doc.is_object()) {
    r.error = bad(
        fmt::format("Invalid request body: expected a JSON object, but got {}.", type_name(doc)),
        "", "invalid_json");
    return r;
  }
  try {
    if (auto e = parse_fields(endpoint, doc, limits, r.request)) r.error = std::move(*e);
  } catch (const std::exception& ex) {  // defensive: a nlohmann accessor on an unchecked type
    r.error = bad(fmt::format("Invalid request: {}", ex.what()));
  }
  return r;
}

}  // namespace edgelm::server
