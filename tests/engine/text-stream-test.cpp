// TextStream: UTF-8 completion and stop-string hold-back, byte by byte.
#include "engine/text-stream.h"

#include <gtest/gtest.h>

namespace edgelm {
namespace {

std::string feed_bytes(TextStream& ts, std::string_view s, std::vector<std::string>* chunks) {
  std::string out;
  for (char c : s) {
    std::string piece = ts.push(std::string_view(&c, 1));
    if (chunks) chunks->push_back(piece);
    out += piece;
  }
  return out;
}

TEST(TextStream, IncompleteTail) {
  EXPECT_EQ(utf8_incomplete_tail(""), 0u);
  EXPECT_EQ(utf8_incomplete_tail("abc"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("a\xC3"), 1u);
  EXPECT_EQ(utf8_incomplete_tail("a\xC3\xA9"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(utf8_incomplete_tail("\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\x80\x80"), 0u);  // stray continuation bytes never complete
  EXPECT_EQ(utf8_incomplete_tail("\xFF"), 0u);      // invalid lead byte
}

TEST(TextStream, NoStopsPassesCompleteCharacters) {
  TextStream ts;
  std::vector<std::string> chunks;
  EXPECT_EQ(feed_bytes(ts,
                       "a\xE2\x82\xAC"
                       "b",
                       &chunks),
            "a\xE2\x82\xAC"
            "b");  // "a€b"
  EXPECT_EQ(chunks, (std::vector<std::string>{"a", "", "", "\xE2\x82\xAC", "b"}));
  EXPECT_EQ(ts.finish(), "");
}

TEST(TextStream, FinishReleasesIncompleteBytes) {
  TextStream ts;
  EXPECT_EQ(ts.push("x\xE2\x82"), "x");
  EXPECT_EQ(ts.finish(), "\xE2\x82");
}

TEST(TextStream, StopInsideOnePiece) {
  TextStream ts({"STOP"});
  EXPECT_EQ(ts.push("abcSTOPdef"), "abc");
  EXPECT_TRUE(ts.stopped());
  EXPECT_EQ(ts.matched_stop(), "STOP");
  EXPECT_EQ(ts.push("more"), "");
  EXPECT_EQ(ts.finish(), "");
}

TEST(TextStream, StopAcrossPiecesAndFalseStart) {
  TextStream ts({"</end>"});
  std::vector<std::string> chunks;
  std::string out = feed_bytes(ts, "x</e!y</end>z", &chunks);
  EXPECT_EQ(out, "x</e!y");
  EXPECT_TRUE(ts.stopped());
  EXPECT_EQ(chunks[1], "");      // "<" held
  EXPECT_EQ(chunks[4], "</e!");  // released when "!" breaks the match
}

TEST(TextStream, EarliestOfSeveralStops) {
  TextStream ts({"world", "lo w"});
  EXPECT_EQ(ts.push("hello world"), "hel");
  EXPECT_EQ(ts.matched_stop(), "lo w");
}

TEST(TextStream, MultibyteStopString) {
  TextStream ts({"\xC3\xA9t\xC3\xA9"});  // "été"
  std::string out = feed_bytes(ts, "caf\xC3\xA9 \xC3\xA9t\xC3\xA9", nullptr);
  EXPECT_EQ(out, "caf\xC3\xA9 ");
  EXPECT_TRUE(ts.stopped());
}

}  // namespace
}  // namespace edgelm
