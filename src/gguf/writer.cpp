#include "gguf/writer.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace edgelm {
namespace {

// resize + memcpy rather than vector::insert: GCC 12 reports a false -Wstringop-overflow there.
void append(std::vector<uint8_t>& out, const void* data, size_t n) {
  if (n == 0) return;
  const size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, data, n);
}

template <typename T>
void put_raw(std::vector<uint8_t>& out, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  append(out, b, sizeof(T));
}

void put_str(std::vector<uint8_t>& out, std::string_view s) {
  put_raw<uint64_t>(out, s.size());
  append(out, s.data(), s.size());
}

template <typename T>
std::vector<uint8_t> scalar(GgufType t, T v) {
  std::vector<uint8_t> out;
  put_raw<uint32_t>(out, static_cast<uint32_t>(t));
  put_raw<T>(out, v);
  return out;
}

template <typename T>
std::vector<uint8_t> array(GgufType et, const std::vector<T>& v) {
  std::vector<uint8_t> out;
  put_raw<uint32_t>(out, static_cast<uint32_t>(GgufType::kArray));
  put_raw<uint32_t>(out, static_cast<uint32_t>(et));
  put_raw<uint64_t>(out, v.size());
  for (const T& x : v) put_raw<T>(out, x);
  return out;
}

void pad_to(std::vector<uint8_t>& out, uint64_t alignment) {
  while (out.size() % alignment) out.push_back(0);
}

}  // namespace

void GgufWriter::put(const std::string& key, std::vector<uint8_t> encoded) {
  for (auto& kv : kv_) {
    if (kv.key == key) {
      kv.encoded = std::move(encoded);
      return;
    }
  }
  kv_.push_back({key, std::move(encoded)});
}

void GgufWriter::set_u8(const std::string& k, uint8_t v) { put(k, scalar(GgufType::kU8, v)); }
void GgufWriter::set_i8(const std::string& k, int8_t v) { put(k, scalar(GgufType::kI8, v)); }
void GgufWriter::set_u16(const std::string& k, uint16_t v) { put(k, scalar(GgufType::kU16, v)); }
void GgufWriter::set_i16(const std::string& k, int16_t v) { put(k, scalar(GgufType::kI16, v)); }
void GgufWriter::set_u32(const std::string& k, uint32_t v) { put(k, scalar(GgufType::kU32, v)); }
void GgufWriter::set_i32(const std::string& k, int32_t v) { put(k, scalar(GgufType::kI32, v)); }
void GgufWriter::set_u64(const std::string& k, uint64_t v) { put(k, scalar(GgufType::kU64, v)); }
void GgufWriter::set_i64(const std::string& k, int64_t v) { put(k, scalar(GgufType::kI64, v)); }
void GgufWriter::set_f32(const std::string& k, float v) { put(k, scalar(GgufType::kF32, v)); }
void GgufWriter::set_f64(const std::string& k, double v) { put(k, scalar(GgufType::kF64, v)); }
void GgufWriter::set_bool(const std::string& k, bool v) {
  put(k, scalar<uint8_t>(GgufType::kBool, v ? 1 : 0));
}

void GgufWriter::set_string(const std::string& k, const std::string& v) {
  std::vector<uint8_t> out;
  put_raw<uint32_t>(out, static_cast<uint32_t>(GgufType::kString));
  put_str(out, v);
  put(k, std::move(out));
}

void GgufWriter::set_array_string(const std::string& k, const std::vector<std::string>& v) {
  std::vector<uint8_t> out;
  put_raw<uint32_t>(out, static_cast<uint32_t>(GgufType::kArray));
  put_raw<uint32_t>(out, static_cast<uint32_t>(GgufType::kString));
  put_raw<uint64_t>(out, v.size());
  for (const auto& s : v) put_str(out, s);
  put(k, std::move(out));
}

void GgufWriter::set_array_i32(const std::string& k, const std::vector<int32_t>& v) {
  put(k, array(GgufType::kI32, v));
}
void GgufWriter::set_array_f32(const std::string& k, const std::vector<float>& v) {
  put(k, array(GgufType::kF32, v));
}
void GgufWriter::set_array_u8(const std::string& k, const std::vector<uint8_t>& v) {
  put(k, array(GgufType::kU8, v));
}

void GgufWriter::set_value(const std::string& k, const GgufValue& v) {
  std::vector<uint8_t> out;
  put_raw<uint32_t>(out, static_cast<uint32_t>(v.type));
  switch (v.type) {
    case GgufType::kString:
      put_str(out, v.str);
      break;
    case GgufType::kArray: {
      put_raw<uint32_t>(out, static_cast<uint32_t>(v.array_type));
      put_raw<uint64_t>(out, v.array_count);
      if (v.array_type == GgufType::kString) {
        for (auto s : v.strings) put_str(out, s);
      } else {
        size_t n = v.array_count * gguf_scalar_size(v.array_type);
        append(out, v.array_data, n);
      }
      break;
    }
    case GgufType::kF32:
      put_raw<float>(out, static_cast<float>(v.f64));
      break;
    case GgufType::kF64:
      put_raw<double>(out, v.f64);
      break;
    default: {
      uint8_t b[8];
      std::memcpy(b, &v.u64, 8);  // little-endian: low bytes first
      append(out, b, gguf_scalar_size(v.type));
    }
  }
  put(k, std::move(out));
}

void GgufWriter::set_alignment(uint32_t alignment) {
  alignment_ = alignment;
  set_u32("general.alignment", alignment);
}

Status GgufWriter::add_tensor(const std::string& name, GgmlType type,
                              const std::vector<int64_t>& dims, std::span<const uint8_t> data) {
  const TypeTraits* tr = type_traits(type);
  if (!tr)
    return Status::invalid_argument(
        fmt::format("tensor '{}': unknown type {}", name, static_cast<uint32_t>(type)));
  if (dims.empty() || dims.size() > 4)
    return Status::invalid_argument(
        fmt::format("tensor '{}': {} dimensions, expected 1..4", name, dims.size()));
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d <= 0)
      return Status::invalid_argument(
          fmt::format("tensor '{}': dimension {} is not positive", name, d));
    n *= d;
  }
  if (dims[0] % tr->block_size)
    return Status::invalid_argument(
        fmt::format("tensor '{}': row length {} is not a multiple of {}'s block size {}", name,
                    dims[0], tr->name, tr->block_size));
  size_t expect = static_cast<size_t>(n / tr->block_size) * tr->type_size;
  if (data.size() != expect)
    return Status::invalid_argument(fmt::format("tensor '{}': {} bytes given, {} {} needs {}", name,
                                                data.size(), tr->name, n, expect));
  for (const auto& t : tensors_)
    if (t.name == name) return Status::invalid_argument(fmt::format("duplicate tensor '{}'", name));
  tensors_.push_back({name, type, dims, std::vector<uint8_t>(data.begin(), data.end())});
  return Status::ok_status();
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  std::vector<uint8_t> out;
  put_raw<uint32_t>(out, 0x46554747);
  put_raw<uint32_t>(out, 3);
  put_raw<uint64_t>(out, tensors_.size());
  put_raw<uint64_t>(out, kv_.size());
  for (const auto& kv : kv_) {
    put_str(out, kv.key);
    append(out, kv.encoded.data(), kv.encoded.size());
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_str(out, t.name);
    put_raw<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) put_raw<uint64_t>(out, static_cast<uint64_t>(d));
    put_raw<uint32_t>(out, static_cast<uint32_t>(t.type));
    put_raw<uint64_t>(out, offset);
    offset += (t.data.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  pad_to(out, alignment_);
  for (const auto& t : tensors_) {
    append(out, t.data.data(), t.data.size());
    pad_to(out, alignment_);
  }
  return out;
}

Status GgufWriter::write(const std::string& path) const {
  std::vector<uint8_t> bytes = to_bytes();
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return Status::io(fmt::format("cannot create '{}': {}", tmp, std::strerror(errno)));
  size_t w = std::fwrite(bytes.data(), 1, bytes.size(), f);
  bool ok = w == bytes.size() && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  int err = errno;
  std::fclose(f);
  if (!ok) {
    std::remove(tmp.c_str());
    return Status::io(fmt::format("cannot write '{}': {} ({} of {} bytes written)", path,
                                  std::strerror(err), w, bytes.size()));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return Status::io(fmt::format("cannot rename '{}' to '{}': {}", tmp, path, ec.message()));
  }
  return Status::ok_status();
}

}  // namespace edgelm
