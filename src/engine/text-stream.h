// Turns a stream of token pieces (raw bytes) into text that is safe to show: only complete
// UTF-8 characters are released, and any tail that could be the start of a stop string is held
// back until it is known not to be one. When a stop string appears, the text before it is
// released and everything from the stop string on is dropped.
//
//   TextStream ts({"\n\n", "User:"});
//   out += ts.push(piece);          // possibly "" while held back
//   if (ts.stopped()) ...;          // a stop string was seen
//   out += ts.finish();             // end of generation: release what is held (if not stopped)
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace edgelm {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop_strings = {});

  // Adds bytes; returns the newly released text. After a stop, returns "" forever.
  std::string push(std::string_view bytes);
  // Releases everything still held (incomplete UTF-8 included, as raw bytes); "" if stopped.
  std::string finish();

  bool stopped() const { return stopped_; }
  // The stop string that matched ("" if none).
  const std::string& matched_stop() const { return matched_; }
  // Bytes held back right now.
  size_t held() const { return pending_.size(); }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  std::string matched_;
  bool stopped_ = false;
};

// Length of an incomplete UTF-8 sequence at the end of s (0 if s ends on a character boundary
// or with bytes that can never complete).
size_t utf8_incomplete_tail(std::string_view s);

}  // namespace edgelm
