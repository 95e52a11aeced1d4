// Conformance with llama.cpp's quantizer: the conformance models in ../shared/models were
// quantized by llama-quantize (no importance matrix, so ggml's quantize_row_*_ref) from the same
// weights as the F16 file. Re-quantizing the F16 weights with src/quant must reproduce the
// quantized files' blocks byte for byte. A minimal GGUF table reader lives here so that this
// test depends on src/quant only. By default the first rows of every tensor are compared;
// EDGELM_QUANT_CONFORMANCE_ALL=1 compares every row.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "quant/quant.h"
#include "test_util.h"

namespace edgelm {
namespace {

struct Tensor {
  GgmlType type;
  std::vector<int64_t> dims;
  uint64_t offset;
};

struct Gguf {
  std::vector<uint8_t> bytes;
  std::map<std::string, Tensor> tensors;
  size_t data_start = 0;
  const uint8_t* data(const Tensor& t) const { return bytes.data() + data_start + t.offset; }
};

class Cursor {
 public:
  explicit Cursor(const std::vector<uint8_t>& b) : b_(b) {}
  template <class T>
  T get() {
    if (pos_ + sizeof(T) > b_.size()) throw std::runtime_error("truncated");
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str() {
    const auto n = get<uint64_t>();
    if (pos_ + n > b_.size()) throw std::runtime_error("truncated string");
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  void skip_value(uint32_t type) {
    static const size_t kSizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) {
      str();
    } else if (type == 9) {
      const auto et = get<uint32_t>();
      const auto n = get<uint64_t>();
      for (uint64_t i = 0; i < n; ++i) skip_value(et);
    } else if (type < 13) {
      pos_ += kSizes[type];
    } else {
      throw std::runtime_error("bad value type");
    }
  }
  size_t pos() const { return pos_; }

 private:
  const std::vector<uint8_t>& b_;
  size_t pos_ = 0;
};

// Test-only reader (exceptions stay inside this file).
bool read_gguf(const std::string& path, Gguf* g, std::string* err) {
  try {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    g->bytes.resize(static_cast<size_t>(f.tellg()));
    f.seekg(0);
    f.read(reinterpret_cast<char*>(g->bytes.data()), static_cast<std::streamsize>(g->bytes.size()));
    if (!f) throw std::runtime_error("read failed");
    Cursor c(g->bytes);
    if (c.get<uint32_t>() != 0x46554747u) throw std::runtime_error("not GGUF");
    c.get<uint32_t>();  // version
    const auto n_tensors = c.get<uint64_t>();
    const auto n_kv = c.get<uint64_t>();
    uint64_t alignment = 32;
    for (uint64_t i = 0; i < n_kv; ++i) {
      const std::string key = c.str();
      const auto type = c.get<uint32_t>();
      if (key == "general.alignment" && type == 4)
        alignment = c.get<uint32_t>();
      else
        c.skip_value(type);
    }
    for (uint64_t i = 0; i < n_tensors; ++i) {
      Tensor t;
      const std::string name = c.str();
      const auto nd = c.get<uint32_t>();
      for (uint32_t d = 0; d < nd; ++d) t.dims.push_back(static_cast<int64_t>(c.get<uint64_t>()));
      t.type = static_cast<GgmlType>(c.get<uint32_t>());
      t.offset = c.get<uint64_t>();
      g->tensors[name] = t;
    }
    g->data_start = (c.pos() + alignment - 1) / alignment * alignment;
    return true;
  } catch (const std::exception& e) {
    *err = e.what();
    return false;
  }
}

void check_requantization(const std::string& quantized_rel, int64_t max_rows) {
  EDGELM_REQUIRE_SHARED(src_path, "models/conf-llama-spm-f16.gguf");
  EDGELM_REQUIRE_SHARED(q_path, quantized_rel);
  Gguf src, q;
  std::string err;
  ASSERT_TRUE(read_gguf(src_path, &src, &err)) << src_path << ": " << err;
  ASSERT_TRUE(read_gguf(q_path, &q, &err)) << q_path << ": " << err;
  std::map<std::string, int> checked_by_type;
  for (const auto& [name, qt] : q.tensors) {
    if (qt.type == GgmlType::kF32 || qt.type == GgmlType::kF16) continue;
    ASSERT_TRUE(can_quantize(qt.type)) << name << " has type " << type_name(qt.type);
    const auto it = src.tensors.find(name);
    ASSERT_NE(it, src.tensors.end()) << name;
    const Tensor& st = it->second;
    ASSERT_EQ(st.dims, qt.dims) << name;
    const int64_t ne0 = qt.dims[0];
    int64_t rows = 1;
    for (size_t d = 1; d < qt.dims.size(); ++d) rows *= qt.dims[d];
    if (std::getenv("EDGELM_QUANT_CONFORMANCE_ALL") == nullptr) rows = std::min(rows, max_rows);
    std::vector<float> f(static_cast<size_t>(ne0));
    const size_t src_row = row_size(st.type, ne0), q_row = row_size(qt.type, ne0);
    std::vector<uint8_t> mine(q_row);
    int64_t bad_rows = 0;
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(st.type, src.data(st) + r * src_row, f.data(), ne0);
      quantize_row(qt.type, f.data(), mine.data(), ne0);
      if (std::memcmp(mine.data(), q.data(qt) + r * q_row, q_row) != 0) ++bad_rows;
    }
    EXPECT_EQ(bad_rows, 0) << name << " (" << type_name(qt.type) << "): " << bad_rows << " of "
                           << rows << " rows differ from llama-quantize's";
    ++checked_by_type[type_name(qt.type)];
  }
  EXPECT_FALSE(checked_by_type.empty());
  for (const auto& [t, n] : checked_by_type)
    std::printf("  %s: %d tensors re-quantized\n", t.c_str(), n);
}

TEST(LlamaQuantizeConformance, Q8_0) {
  check_requantization("models/conf-llama-spm-q8_0.gguf", 256);
}
TEST(LlamaQuantizeConformance, Q4_0) {
  check_requantization("models/conf-llama-spm-q4_0.gguf", 256);
}
TEST(LlamaQuantizeConformance, Q4_K_M) {
  check_requantization("models/conf-llama-spm-q4_k_m.gguf", 256);
}

}  // namespace
}  // namespace edgelm
