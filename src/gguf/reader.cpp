#include "gguf/reader.h"

#include <fmt/format.h>

#include <cstring>
#include <limits>

namespace edgelm {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kMaxDims = 4;
constexpr uint64_t kMaxStringLen = uint64_t{1} << 30;

// Bounds-checked little-endian cursor over the mapped bytes. Every read names what it reads.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> b, const std::string& file) : b_(b), file_(file) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return b_.size() - pos_; }

  Status need(uint64_t n, std::string_view what) const {
    if (n > remaining())
      return Status::data_loss(
          fmt::format("{}: truncated at byte {} reading {}: need {} bytes, {} left", file_, pos_,
                      what, n, remaining()));
    return Status::ok_status();
  }
  template <typename T>
  Status read(T* out, std::string_view what) {
    RETURN_IF_ERROR(need(sizeof(T), what));
    std::memcpy(out, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::ok_status();
  }
  Status read_string(std::string_view* out, std::string_view what) {
    uint64_t len = 0;
    RETURN_IF_ERROR(read(&len, what));
    if (len > kMaxStringLen || len > remaining())
      return Status::data_loss(
          fmt::format("{}: {} at byte {} has length {} but only {} bytes remain", file_, what,
                      pos_ - 8, len, remaining()));
    *out = std::string_view(reinterpret_cast<const char*>(b_.data() + pos_), len);
    pos_ += len;
    return Status::ok_status();
  }
  const uint8_t* here() const { return b_.data() + pos_; }
  void skip(uint64_t n) { pos_ += n; }

 private:
  std::span<const uint8_t> b_;
  const std::string& file_;
  uint64_t pos_ = 0;
};

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kF64); }

Status read_scalar(Cursor& c, GgufType t, GgufValue* v, std::string_view what) {
  switch (t) {
#define EDGELM_SCALAR(TAG, CT, FIELD)  \
  case GgufType::TAG: {                \
    CT x{};                            \
    RETURN_IF_ERROR(c.read(&x, what)); \
    v->FIELD;                          \
    break;                             \
  }
    EDGELM_SCALAR(kU8, uint8_t, u64 = x)
    EDGELM_SCALAR(kI8, int8_t, i64 = x)
    EDGELM_SCALAR(kU16, uint16_t, u64 = x)
    EDGELM_SCALAR(kI16, int16_t, i64 = x)
    EDGELM_SCALAR(kU32, uint32_t, u64 = x)
    EDGELM_SCALAR(kI32, int32_t, i64 = x)
    EDGELM_SCALAR(kU64, uint64_t, u64 = x)
    EDGELM_SCALAR(kI64, int64_t, i64 = x)
    EDGELM_SCALAR(kF32, float, f64 = x)
    EDGELM_SCALAR(kF64, double, f64 = x)
    EDGELM_SCALAR(kBool, uint8_t, u64 = x)
#undef EDGELM_SCALAR
    default:
      return Status::internal("read_scalar on non-scalar type");
  }
  // Mirror into the other numeric fields so lookups by family work.
  switch (t) {
    case GgufType::kU8:
    case GgufType::kU16:
    case GgufType::kU32:
    case GgufType::kU64:
    case GgufType::kBool:
      v->i64 = static_cast<int64_t>(v->u64);
      v->f64 = static_cast<double>(v->u64);
      break;
    case GgufType::kI8:
    case GgufType::kI16:
    case GgufType::kI32:
    case GgufType::kI64:
      v->u64 = static_cast<uint64_t>(v->i64);
      v->f64 = static_cast<double>(v->i64);
      break;
    default:
      break;
  }
  return Status::ok_status();
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  static const char* kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                 "bool", "string", "array", "u64", "i64", "f64"};
  auto i = static_cast<uint32_t>(t);
  return i < 13 ? kNames[i] : "invalid";
}

size_t gguf_scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
      return 8;
    default:
      return 0;
  }
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kU16:
    case GgufType::kI16:
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kU64:
    case GgufType::kI64:
      return true;
    default:
      return false;
  }
}

bool GgufValue::is_number() const {
  return is_integer() || type == GgufType::kF32 || type == GgufType::kF64 ||
         type == GgufType::kBool;
}

double GgufValue::array_f64(uint64_t i) const {
  const uint8_t* p = array_data + i * gguf_scalar_size(array_type);
  // clang-format off
  switch (array_type) {
#define EDGELM_ELEM(TAG, CT)       \
  case GgufType::TAG: {            \
    CT x;                          \
    std::memcpy(&x, p, sizeof x);  \
    return static_cast<double>(x); \
  }
    EDGELM_ELEM(kU8, uint8_t) EDGELM_ELEM(kI8, int8_t) EDGELM_ELEM(kU16, uint16_t)
    EDGELM_ELEM(kI16, int16_t) EDGELM_ELEM(kU32, uint32_t) EDGELM_ELEM(kI32, int32_t)
    EDGELM_ELEM(kU64, uint64_t) EDGELM_ELEM(kI64, int64_t) EDGELM_ELEM(kF32, float)
    EDGELM_ELEM(kF64, double) EDGELM_ELEM(kBool, uint8_t)
#undef EDGELM_ELEM
    default:
      return 0;
  }
  // clang-format on
}

int64_t GgufValue::array_i64(uint64_t i) const {
  const uint8_t* p = array_data + i * gguf_scalar_size(array_type);
  switch (array_type) {
    case GgufType::kU64: {
      uint64_t x;
      std::memcpy(&x, p, 8);
      return static_cast<int64_t>(x);
    }
    case GgufType::kI64: {
      int64_t x;
      std::memcpy(&x, p, 8);
      return x;
    }
    default:
      return static_cast<int64_t>(array_f64(i));
  }
}

std::string GgufValue::to_string(size_t max_elems) const {
  switch (type) {
    case GgufType::kString: {
      return fmt::format("\"{}{}\"", str.substr(0, 120), str.size() > 120 ? "..." : "");
    }
    case GgufType::kBool:
      return u64 ? "true" : "false";
    case GgufType::kF32:
    case GgufType::kF64:
      return fmt::format("{:g}", f64);
    case GgufType::kArray: {
      if (array_count > max_elems)
        return fmt::format("[{} x {}]", gguf_type_name(array_type), array_count);
      std::string s(1, '[');
      {
        for (uint64_t i = 0; i < array_count; ++i) {
          if (i) s += ", ";
          if (array_type == GgufType::kString)
            s += fmt::format("\"{}\"", strings[i]);
          else if (array_type == GgufType::kF32 || array_type == GgufType::kF64)
            s += fmt::format("{:g}", array_f64(i));
          else
            s += std::to_string(array_i64(i));
        }
        s += ']';
      }
      return s;
    }
    default:
      if (type == GgufType::kI8 || type == GgufType::kI16 || type == GgufType::kI32 ||
          type == GgufType::kI64)
        return std::to_string(i64);
      return std::to_string(u64);
  }
}

std::string GgufTensorInfo::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", dims[i]);
  s += ']';
  return s;
}

StatusOr<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  ASSIGN_OR_RETURN(MappedFile map, MappedFile::open(path));
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->name_ = path;
  f->map_ = std::move(map);
  f->bytes_ = f->map_.bytes();
  RETURN_IF_ERROR(f->parse_all());
  return f;
}

StatusOr<std::unique_ptr<GgufFile>> GgufFile::parse(std::span<const uint8_t> bytes,
                                                    const std::string& name) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->name_ = name;
  f->bytes_ = bytes;
  RETURN_IF_ERROR(f->parse_all());
  return f;
}

Status GgufFile::parse_all() {
  Cursor c(bytes_, name_);
  uint32_t magic = 0;
  if (bytes_.size() < 4)
    return Status::data_loss(
        fmt::format("{}: not a GGUF file: only {} bytes", name_, bytes_.size()));
  RETURN_IF_ERROR(c.read(&magic, "magic"));
  if (magic != kMagic)
    return Status::data_loss(
        fmt::format("{}: not a GGUF file: magic is 0x{:08x}, expected 0x{:08x} (\"GGUF\")", name_,
                    magic, kMagic));
  RETURN_IF_ERROR(c.read(&version_, "version"));
  if (version_ == 1)
    return Status::unimplemented(
        fmt::format("{}: GGUF version 1 is not supported (convert to v3)", name_));
  if (version_ != 2 && version_ != 3)
    return Status::data_loss(
        fmt::format("{}: unknown GGUF version {}, expected 2 or 3", name_, version_));
  uint64_t n_tensors = 0, n_kv = 0;
  RETURN_IF_ERROR(c.read(&n_tensors, "tensor count"));
  RETURN_IF_ERROR(c.read(&n_kv, "metadata count"));
  // Each kv needs >= 8+4+1 bytes and each tensor info >= 8+4+8+4+8; bound the counts by the size.
  if (n_kv > c.remaining() / 13)
    return Status::data_loss(fmt::format("{}: metadata count {} is impossible for a {}-byte file",
                                         name_, n_kv, bytes_.size()));
  if (n_tensors > c.remaining() / 32)
    return Status::data_loss(fmt::format("{}: tensor count {} is impossible for a {}-byte file",
                                         name_, n_tensors, bytes_.size()));

  kv_.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    uint64_t at = c.pos();
    std::string_view key;
    RETURN_IF_ERROR(c.read_string(&key, fmt::format("key of metadata entry {}", k)));
    std::string key_s(key);
    uint32_t t = 0;
    RETURN_IF_ERROR(c.read(&t, fmt::format("type of '{}'", key_s)));
    if (!valid_type(t))
      return Status::data_loss(fmt::format("{}: metadata '{}' (byte {}) has unknown value type {}",
                                           name_, key_s, at, t));
    GgufValue v;
    v.type = static_cast<GgufType>(t);
    std::string what = fmt::format("value of '{}'", key_s);
    if (v.type == GgufType::kString) {
      RETURN_IF_ERROR(c.read_string(&v.str, what));
    } else if (v.type == GgufType::kArray) {
      uint32_t et = 0;
      RETURN_IF_ERROR(c.read(&et, what));
      if (!valid_type(et))
        return Status::data_loss(
            fmt::format("{}: array '{}' has unknown element type {}", name_, key_s, et));
      v.array_type = static_cast<GgufType>(et);
      if (v.array_type == GgufType::kArray)
        return Status::unimplemented(
            fmt::format("{}: nested array in '{}' is not supported", name_, key_s));
      RETURN_IF_ERROR(c.read(&v.array_count, what));
      if (v.array_type == GgufType::kString) {
        if (v.array_count > c.remaining() / 8)
          return Status::data_loss(
              fmt::format("{}: array '{}' claims {} strings but only {} bytes remain", name_, key_s,
                          v.array_count, c.remaining()));
        v.strings.resize(v.array_count);
        for (uint64_t i = 0; i < v.array_count; ++i)
          RETURN_IF_ERROR(
              c.read_string(&v.strings[i], fmt::format("element {} of '{}'", i, key_s)));
      } else {
        size_t es = gguf_scalar_size(v.array_type);
        if (v.array_count > c.remaining() / es)
          return Status::data_loss(
              fmt::format("{}: array '{}' claims {} {} elements but only {} bytes remain", name_,
                          key_s, v.array_count, gguf_type_name(v.array_type), c.remaining()));
        v.array_data = c.here();
        c.skip(v.array_count * es);
      }
    } else {
      RETURN_IF_ERROR(read_scalar(c, v.type, &v, what));
    }
    if (kv_index_.count(key_s))
      return Status::data_loss(
          fmt::format("{}: duplicate metadata key '{}' at byte {}", name_, key_s, at));
    kv_index_.emplace(key_s, kv_.size());
    kv_.emplace_back(std::move(key_s), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is_integer() || a->u64 == 0 || (a->u64 & (a->u64 - 1)) != 0 || a->u64 > 65536)
      return Status::data_loss(
          fmt::format("{}: general.alignment must be a power of two <= 65536, found {}", name_,
                      a->to_string()));
    alignment_ = a->u64;
  }

  tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo ti;
    std::string_view name;
    RETURN_IF_ERROR(c.read_string(&name, fmt::format("name of tensor {}", i)));
    ti.name = std::string(name);
    uint32_t n_dims = 0;
    RETURN_IF_ERROR(c.read(&n_dims, fmt::format("dimension count of tensor '{}'", ti.name)));
    if (n_dims == 0 || n_dims > kMaxDims)
      return Status::data_loss(fmt::format("{}: tensor '{}' has {} dimensions, expected 1..{}",
                                           name_, ti.name, n_dims, kMaxDims));
    ti.dims.resize(n_dims);
    int64_t n_el = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = 0;
      RETURN_IF_ERROR(c.read(&ne, fmt::format("dimension {} of tensor '{}'", d, ti.name)));
      if (ne == 0 || ne > (uint64_t{1} << 40))
        return Status::data_loss(
            fmt::format("{}: tensor '{}' dimension {} is {}, out of range", name_, ti.name, d, ne));
      if (n_el > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(ne))
        return Status::data_loss(
            fmt::format("{}: tensor '{}' element count overflows", name_, ti.name));
      ti.dims[d] = static_cast<int64_t>(ne);
      n_el *= static_cast<int64_t>(ne);
    }
    ti.n_elements = n_el;
    uint32_t type = 0;
    RETURN_IF_ERROR(c.read(&type, fmt::format("type of tensor '{}'", ti.name)));
    const TypeTraits* tr = type_traits(type);
    if (!tr)
      return Status::data_loss(
          fmt::format("{}: tensor '{}' has unknown ggml type {}", name_, ti.name, type));
    ti.type = tr->type;
    if (ti.dims[0] % tr->block_size != 0)
      return Status::data_loss(fmt::format(
          "{}: tensor '{}' of type {} has row length {}, not a multiple of the block size {}",
          name_, ti.name, tr->name, ti.dims[0], tr->block_size));
    ti.nbytes = static_cast<size_t>(n_el / tr->block_size) * tr->type_size;
    RETURN_IF_ERROR(c.read(&ti.offset, fmt::format("offset of tensor '{}'", ti.name)));
    if (ti.offset % alignment_ != 0)
      return Status::data_loss(
          fmt::format("{}: tensor '{}' offset {} is not a multiple of the alignment {}", name_,
                      ti.name, ti.offset, alignment_));
    if (tensor_index_.count(ti.name))
      return Status::data_loss(fmt::format("{}: duplicate tensor name '{}'", name_, ti.name));
    tensor_index_.emplace(ti.name, tensors_.size());
    tensors_.push_back(std::move(ti));
  }

  uint64_t pad = (alignment_ - c.pos() % alignment_) % alignment_;
  data_offset_ = c.pos() + pad;
  if (n_tensors > 0 && data_offset_ > bytes_.size())
    return Status::data_loss(
        fmt::format("{}: truncated: tensor data would start at byte {} but the file has {} bytes",
                    name_, data_offset_, bytes_.size()));
  uint64_t data_size = data_offset_ <= bytes_.size() ? bytes_.size() - data_offset_ : 0;
  for (auto& ti : tensors_) {
    if (ti.offset > data_size || ti.nbytes > data_size - ti.offset)
      return Status::data_loss(
          fmt::format("{}: tensor '{}' ({} {}) needs bytes {}..{} of the data section but it has "
                      "only {} bytes (file truncated?)",
                      name_, ti.name, type_name(ti.type), ti.shape_string(), ti.offset,
                      ti.offset + ti.nbytes, data_size));
    ti.data = bytes_.data() + data_offset_ + ti.offset;
  }
  return Status::ok_status();
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(std::string(key));
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || v->type != GgufType::kString) return std::nullopt;
  return std::string(v->str);
}

std::optional<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || !v->is_integer()) return std::nullopt;
  if (v->i64 < 0 && (v->type == GgufType::kI8 || v->type == GgufType::kI16 ||
                     v->type == GgufType::kI32 || v->type == GgufType::kI64))
    return std::nullopt;
  return v->u64;
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || !v->is_integer()) return std::nullopt;
  return v->i64;
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || !v->is_number()) return std::nullopt;
  return v->f64;
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || (v->type != GgufType::kBool && !v->is_integer())) return std::nullopt;
  return v->u64 != 0;
}

StatusOr<uint64_t> GgufFile::require_uint(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v)
    return Status::not_found(fmt::format("{}: required metadata '{}' is missing", name_, key));
  auto u = get_uint(key);
  if (!u)
    return Status::data_loss(
        fmt::format("{}: metadata '{}' should be a non-negative integer, found {} {}", name_, key,
                    gguf_type_name(v->type), v->to_string()));
  return *u;
}

StatusOr<std::string> GgufFile::require_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v)
    return Status::not_found(fmt::format("{}: required metadata '{}' is missing", name_, key));
  if (v->type != GgufType::kString)
    return Status::data_loss(fmt::format("{}: metadata '{}' should be a string, found {}", name_,
                                         key, gguf_type_name(v->type)));
  return std::string(v->str);
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace edgelm
