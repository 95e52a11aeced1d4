// Minimal leveled logging to stderr; level from EDGELM_LOG (debug|info|warn|error|off).
//
//   EDGELM_LOG_INFO("loaded {} tensors in {:.1f} ms", n, ms);
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace edgelm {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

LogLevel log_level();
void set_log_level(LogLevel level);
void log_write(LogLevel level, std::string_view message);

}  // namespace edgelm

#define EDGELM_LOG_AT(level, ...)                                           \
  do {                                                                      \
    if (static_cast<int>(level) >= static_cast<int>(::edgelm::log_level())) \
      ::edgelm::log_write(level, fmt::format(__VA_ARGS__));                 \
  } while (0)
#define EDGELM_LOG_DEBUG(...) EDGELM_LOG_AT(::edgelm::LogLevel::kDebug, __VA_ARGS__)
#define EDGELM_LOG_INFO(...) EDGELM_LOG_AT(::edgelm::LogLevel::kInfo, __VA_ARGS__)
#define EDGELM_LOG_WARN(...) EDGELM_LOG_AT(::edgelm::LogLevel::kWarn, __VA_ARGS__)
#define EDGELM_LOG_ERROR(...) EDGELM_LOG_AT(::edgelm::LogLevel::kError, __VA_ARGS__)
