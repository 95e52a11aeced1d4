// Tensor-aware delta patches (see delta.h; byte layout in docs/formats/delta.md).
//
// make: the target file is cut into segments that cover it in order (the metadata region
// [0, data_offset), each tensor's data, the padding between them). Each segment is a list of
// chunks; a chunk is zeros, a copy of old bytes, or a zstd frame compressed either with the old
// bytes around the same position as prefix ("prefix") or as the bytewise difference from the
// old bytes at the same position ("sub"). make tries both at a fast level and keeps the
// smaller. apply streams the records, never holding more than one chunk, its reference and its
// frame, and verifies every segment's SHA-256 and the file's before the atomic rename.
#include "runtime/update/delta.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "base/threadpool.h"
#include "gguf/reader.h"

namespace edgelm::update {

namespace {

constexpr char kMagic[8] = {'E', 'L', 'M', 'D', 'E', 'L', 'T', 'A'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderSize = 152;
constexpr size_t kPatchHashOffset = 120;  // SHA-256 of header bytes [0, 120) + body
// Limits apply enforces before allocating anything a patch asks for.
constexpr uint64_t kMaxChunkLimit = 64ull << 20;
constexpr uint64_t kMaxRefLimit = 192ull << 20;
constexpr uint32_t kMaxNameLen = 4096;
constexpr uint32_t kMaxSegments = 1u << 24;
constexpr size_t kIoBuffer = 1 << 20;
constexpr const char* kPartialSuffix = ".elmd-partial";

enum class SegKind : uint8_t { kMetadata = 1, kTensor = 2, kGap = 3, kSpan = 4 };
enum class ChunkKind : uint8_t { kZero = 0, kCopy = 1, kPrefix = 2, kSub = 3 };

const char* seg_kind_name(SegKind k) {
  switch (k) {
    case SegKind::kMetadata:
      return "metadata";
    case SegKind::kTensor:
      return "tensor";
    case SegKind::kGap:
      return "padding";
    case SegKind::kSpan:
      return "unchanged span";
  }
  return "?";
}

// ---- little-endian encoding ----

void put_u8(std::vector<uint8_t>& b, uint8_t v) { b.push_back(v); }
void put_u32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_u64(std::vector<uint8_t>& b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_bytes(std::vector<uint8_t>& b, const void* p, size_t n) {
  const auto* c = static_cast<const uint8_t*>(p);
  b.insert(b.end(), c, c + n);
}
// LEB128 unsigned varint.
void put_varint(std::vector<uint8_t>& b, uint64_t v) {
  while (v >= 0x80) {
    b.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  b.push_back(static_cast<uint8_t>(v));
}
uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

std::string errno_text(int e) { return std::strerror(e); }

struct Header {
  uint32_t version = kVersion;
  uint32_t flags = 0;
  uint64_t source_size = 0, target_size = 0;
  Sha256 source_sha{}, target_sha{};
  uint64_t body_size = 0;
  uint32_t n_segments = 0;
  uint32_t max_chunk = 0, max_ref = 0, max_frame = 0;
  Sha256 patch_sha{};  // SHA-256(body || header bytes [0, kPatchHashOffset))
};

std::vector<uint8_t> encode_header(const Header& h) {
  std::vector<uint8_t> b;
  put_bytes(b, kMagic, 8);
  put_u32(b, h.version);
  put_u32(b, h.flags);
  put_u64(b, h.source_size);
  put_u64(b, h.target_size);
  put_bytes(b, h.source_sha.data(), 32);
  put_bytes(b, h.target_sha.data(), 32);
  put_u64(b, h.body_size);
  put_u32(b, h.n_segments);
  put_u32(b, h.max_chunk);
  put_u32(b, h.max_ref);
  put_u32(b, h.max_frame);
  put_bytes(b, h.patch_sha.data(), 32);
  return b;
}

Status decode_header(const uint8_t* p, const std::string& path, Header* h) {
  if (std::memcmp(p, kMagic, 8) != 0) {
    return Status::data_loss(
        fmt::format("'{}' is not an edgelm delta patch: bad magic at offset 0 (expected "
                    "\"ELMDELTA\")",
                    path));
  }
  h->version = get_u32(p + 8);
  if (h->version != kVersion) {
    return Status::unimplemented(
        fmt::format("'{}': delta format version {} at offset 8; this build reads version {}", path,
                    h->version, kVersion));
  }
  h->flags = get_u32(p + 12);
  h->source_size = get_u64(p + 16);
  h->target_size = get_u64(p + 24);
  std::memcpy(h->source_sha.data(), p + 32, 32);
  std::memcpy(h->target_sha.data(), p + 64, 32);
  h->body_size = get_u64(p + 96);
  h->n_segments = get_u32(p + 104);
  h->max_chunk = get_u32(p + 108);
  h->max_ref = get_u32(p + 112);
  h->max_frame = get_u32(p + 116);
  std::memcpy(h->patch_sha.data(), p + kPatchHashOffset, 32);
  if (h->max_chunk > kMaxChunkLimit || h->max_ref > kMaxRefLimit ||
      h->max_frame > ZSTD_compressBound(kMaxChunkLimit) || h->n_segments > kMaxSegments) {
    return Status::data_loss(
        fmt::format("'{}': header limits out of range (max_chunk {}, max_ref {}, max_frame {}, "
                    "segments {}; limits {}, {}, {}, {})",
                    path, h->max_chunk, h->max_ref, h->max_frame, h->n_segments, kMaxChunkLimit,
                    kMaxRefLimit, ZSTD_compressBound(kMaxChunkLimit), kMaxSegments));
  }
  return Status::ok_status();
}

// ---- file helpers ----

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

Status pread_exact(int fd, void* buf, size_t n, uint64_t off, const std::string& path) {
  auto* p = static_cast<uint8_t*>(buf);
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      return Status::io(
          fmt::format("reading '{}' at offset {}: {}", path, off + done, errno_text(errno)));
    }
    if (r == 0) {
      return Status::data_loss(fmt::format("'{}' ends at offset {}, expected {} more bytes", path,
                                           off + done, n - done));
    }
    done += static_cast<size_t>(r);
  }
  return Status::ok_status();
}

StatusOr<uint64_t> file_size_of(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return Status::io(fmt::format("stat '{}': {}", path, errno_text(errno)));
  }
  if (!S_ISREG(st.st_mode))
    return Status::invalid_argument(fmt::format("'{}' is not a file", path));
  return static_cast<uint64_t>(st.st_size);
}

StatusOr<Sha256> hash_fd_range(int fd, uint64_t size, const std::string& path) {
  Sha256Hasher h;
  std::vector<uint8_t> buf(kIoBuffer);
  for (uint64_t off = 0; off < size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
    RETURN_IF_ERROR(pread_exact(fd, buf.data(), n, off, path));
    h.update(buf.data(), n);
    off += n;
  }
  return h.finish();
}

// Sequential reader over the patch body with a small buffer; positions in messages are
// absolute patch offsets.
class PatchReader {
 public:
  PatchReader(int fd, uint64_t start, uint64_t end, std::string path)
      : fd_(fd), pos_(start), end_(end), path_(std::move(path)), buf_(kIoBuffer) {}

  uint64_t pos() const { return pos_ - (buf_len_ - buf_pos_); }
  bool at_end() const { return pos() == end_; }

  Status read_varint(uint64_t* v, const char* what) {
    const uint64_t at = pos();
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = 0;
      RETURN_IF_ERROR(read(&b, 1, what));
      if (shift == 63 && b > 1) break;
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return Status::ok_status();
    }
    return Status::data_loss(
        fmt::format("patch '{}': {} at offset {} is not a valid varint", path_, what, at));
  }

  Status read(void* dst, size_t n, const char* what) {
    auto* out = static_cast<uint8_t*>(dst);
    if (n > end_ - pos()) {
      return Status::data_loss(
          fmt::format("patch '{}' is truncated: {} needs {} bytes at offset {}, only {} remain",
                      path_, what, n, pos(), end_ - pos()));
    }
    while (n > 0) {
      if (buf_pos_ == buf_len_) {
        // Large reads bypass the buffer.
        if (n >= buf_.size()) {
          RETURN_IF_ERROR(pread_exact(fd_, out, n, pos_, path_));
          pos_ += n;
          return Status::ok_status();
        }
        const size_t want = static_cast<size_t>(std::min<uint64_t>(buf_.size(), end_ - pos_));
        RETURN_IF_ERROR(pread_exact(fd_, buf_.data(), want, pos_, path_));
        pos_ += want;
        buf_pos_ = 0;
        buf_len_ = want;
      }
      const size_t take = std::min(n, buf_len_ - buf_pos_);
      std::memcpy(out, buf_.data() + buf_pos_, take);
      buf_pos_ += take;
      out += take;
      n -= take;
    }
    return Status::ok_status();
  }

 private:
  int fd_;
  uint64_t pos_;  // file offset of the end of the buffered bytes
  uint64_t end_;
  std::string path_;
  std::vector<uint8_t> buf_;
  size_t buf_pos_ = 0, buf_len_ = 0;
};

Status write_all(int fd, const WriteFn& wfn, const void* data, size_t n, uint64_t off,
                 const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t w = wfn ? wfn(fd, p, n) : ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int e = w < 0 ? errno : EIO;
      const std::string msg =
          fmt::format("writing '{}' at offset {}: {}", path, off, errno_text(e));
      if (e == ENOSPC || e == EDQUOT || e == EFBIG) return Status::resource_exhausted(msg);
      return Status::io(msg);
    }
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return Status::ok_status();
}

std::string parent_dir(const std::string& path) {
  std::filesystem::path p(path);
  std::string d = p.parent_path().string();
  return d.empty() ? "." : d;
}

// ---- make ----

struct Job {
  uint32_t seg = 0;
  ChunkKind kind = ChunkKind::kZero;
  const uint8_t* data = nullptr;  // target bytes
  uint64_t len = 0;
  uint64_t ref_off = 0, ref_len = 0;  // copy: source; prefix: prefix range (absolute, old file)
  uint64_t sub_off = 0, sub_len = 0;  // sub candidate (sub_len 0 = none)
  std::vector<uint8_t> frame;         // result
};

struct Segment {
  SegKind kind = SegKind::kGap;
  std::string name;
  uint64_t offset = 0, size = 0;
  Sha256 sha{};
  uint32_t first_job = 0, n_jobs = 0;
};

struct Planner {
  const uint8_t* old_base;
  const uint8_t* new_base;
  uint64_t chunk, margin;
  std::vector<Segment> segs;
  std::vector<Job> jobs;

  // Source offset right after the last job if it is a copy (where an unchanged gap would be).
  bool last_copy_end(uint64_t* end) const {
    if (jobs.empty() || jobs.back().kind != ChunkKind::kCopy) return false;
    *end = jobs.back().ref_off + jobs.back().len;
    return true;
  }

  // Merges runs of unchanged spans that are contiguous in the source into one copy.
  void merge_spans() {
    std::vector<Segment> out_segs;
    std::vector<Job> out_jobs;
    for (size_t i = 0; i < segs.size(); ++i) {
      const Segment& s = segs[i];
      if (s.kind == SegKind::kSpan && !out_segs.empty() && out_segs.back().kind == SegKind::kSpan) {
        Job& prev = out_jobs.back();
        const Job& cur = jobs[s.first_job];
        if (prev.ref_off + prev.len == cur.ref_off) {
          prev.len += cur.len;
          prev.ref_len = prev.len;
          out_segs.back().size += s.size;
          continue;
        }
      }
      Segment ns = s;
      ns.first_job = static_cast<uint32_t>(out_jobs.size());
      for (uint32_t k = 0; k < s.n_jobs; ++k) {
        out_jobs.push_back(std::move(jobs[s.first_job + k]));
        out_jobs.back().seg = static_cast<uint32_t>(out_segs.size());
      }
      out_segs.push_back(std::move(ns));
    }
    segs = std::move(out_segs);
    jobs = std::move(out_jobs);
  }

  static bool all_zero(const uint8_t* p, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i)
      if (p[i]) return false;
    return true;
  }

  // Adds a segment for new bytes [t_off, t_off+size), compared against old bytes
  // [o_off, o_off+o_size) (o_size 0: nothing to compare with).
  void add(SegKind kind, std::string name, uint64_t t_off, uint64_t size, uint64_t o_off,
           uint64_t o_size, bool try_sub) {
    Segment s;
    s.kind = kind;
    s.name = std::move(name);
    s.offset = t_off;
    s.size = size;
    s.first_job = static_cast<uint32_t>(jobs.size());
    const uint8_t* t = new_base + t_off;
    if (size > 0 && size == o_size && std::memcmp(t, old_base + o_off, size) == 0) {
      // Unchanged: a span copied from the (hash-verified) source.
      s.kind = SegKind::kSpan;
      s.name.clear();
      Job j;
      j.seg = static_cast<uint32_t>(segs.size());
      j.kind = ChunkKind::kCopy;
      j.data = t;
      j.len = size;
      j.ref_off = o_off;
      j.ref_len = size;
      jobs.push_back(std::move(j));
    } else {
      for (uint64_t s0 = 0; s0 < size; s0 += chunk) {
        Job j;
        j.seg = static_cast<uint32_t>(segs.size());
        j.data = t + s0;
        j.len = std::min(chunk, size - s0);
        if (all_zero(j.data, j.len)) {
          j.kind = ChunkKind::kZero;
        } else if (s0 + j.len <= o_size && std::memcmp(j.data, old_base + o_off + s0, j.len) == 0) {
          j.kind = ChunkKind::kCopy;
          j.ref_off = o_off + s0;
          j.ref_len = j.len;
        } else {
          j.kind = ChunkKind::kPrefix;
          const uint64_t lo = s0 > margin ? s0 - margin : 0;
          const uint64_t hi = std::min(o_size, s0 + j.len + margin);
          if (lo < hi) {
            j.ref_off = o_off + lo;
            j.ref_len = hi - lo;
          }
          if (try_sub && s0 < o_size) {
            j.sub_off = o_off + s0;
            j.sub_len = std::min(j.len, o_size - s0);
          }
        }
        jobs.push_back(std::move(j));
      }
    }
    if (s.kind == SegKind::kTensor) s.sha = sha256(t, size);
    s.n_jobs = static_cast<uint32_t>(jobs.size()) - s.first_job;
    segs.push_back(std::move(s));
  }
};

int ceil_log2(uint64_t n) {
  int l = 0;
  while ((1ull << l) < n) ++l;
  return l;
}

Status compress_frame(ZSTD_CCtx* cctx, const uint8_t* src, size_t n, const uint8_t* prefix,
                      size_t plen, int level, std::vector<uint8_t>* out) {
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
  const int wlog = std::clamp(ceil_log2(plen + n), 10, 27);
  size_t r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, wlog);
  if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_enableLongDistanceMatching, 1);
  if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
  if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0);
  if (!ZSTD_isError(r) && plen > 0) r = ZSTD_CCtx_refPrefix(cctx, prefix, plen);
  if (ZSTD_isError(r)) {
    return Status::internal(fmt::format("zstd setup: {}", ZSTD_getErrorName(r)));
  }
  out->resize(ZSTD_compressBound(n));
  r = ZSTD_compress2(cctx, out->data(), out->size(), src, n);
  if (ZSTD_isError(r)) return Status::internal(fmt::format("zstd: {}", ZSTD_getErrorName(r)));
  out->resize(r);
  return Status::ok_status();
}

// Bytewise difference new - old over the first ref_len bytes; the rest as is.
void sub_transform(const uint8_t* t, size_t n, const uint8_t* ref, size_t ref_len,
                   std::vector<uint8_t>* out) {
  out->resize(n);
  for (size_t i = 0; i < ref_len; ++i) (*out)[i] = static_cast<uint8_t>(t[i] - ref[i]);
  std::memcpy(out->data() + ref_len, t + ref_len, n - ref_len);
}

Status compress_job(ZSTD_CCtx* cctx, const uint8_t* old_base, int level, Job* j,
                    std::vector<uint8_t>* scratch) {
  if (j->kind != ChunkKind::kPrefix) return Status::ok_status();
  const uint8_t* prefix = j->ref_len ? old_base + j->ref_off : nullptr;
  if (j->sub_len == 0) {
    return compress_frame(cctx, j->data, j->len, prefix, j->ref_len, level, &j->frame);
  }
  // Pick the better transform at a fast level, then compress the winner at `level`.
  const int probe = std::min(level, 3);
  std::vector<uint8_t> a, b;
  RETURN_IF_ERROR(compress_frame(cctx, j->data, j->len, prefix, j->ref_len, probe, &a));
  sub_transform(j->data, j->len, old_base + j->sub_off, j->sub_len, scratch);
  RETURN_IF_ERROR(compress_frame(cctx, scratch->data(), scratch->size(), nullptr, 0, probe, &b));
  if (b.size() < a.size()) {
    j->kind = ChunkKind::kSub;
    j->ref_off = j->sub_off;
    j->ref_len = j->sub_len;
    if (probe == level) {
      j->frame = std::move(b);
      return Status::ok_status();
    }
    return compress_frame(cctx, scratch->data(), scratch->size(), nullptr, 0, level, &j->frame);
  }
  if (probe == level) {
    j->frame = std::move(a);
    return Status::ok_status();
  }
  return compress_frame(cctx, j->data, j->len, prefix, j->ref_len, level, &j->frame);
}

void emit_phase(const DeltaOptions& o, const std::string& s) {
  if (o.phase) o.phase(s);
}

}  // namespace

Status make_delta(const std::string& old_path, const std::string& new_path,
                  const std::string& patch_path, const DeltaOptions& opts, DeltaStats* stats) {
  if (opts.chunk_bytes == 0 || opts.chunk_bytes > kMaxChunkLimit) {
    return Status::invalid_argument(
        fmt::format("chunk size {} out of range (1..{})", opts.chunk_bytes, kMaxChunkLimit));
  }
  if (opts.chunk_bytes + 2 * opts.ref_margin_bytes > kMaxRefLimit) {
    return Status::invalid_argument(
        fmt::format("reference margin {} too large (chunk + 2 x margin "
                    "must be at most {})",
                    opts.ref_margin_bytes, kMaxRefLimit));
  }
  if (opts.zstd_level < 1 || opts.zstd_level > ZSTD_maxCLevel()) {
    return Status::invalid_argument(
        fmt::format("zstd level {} out of range (1..{})", opts.zstd_level, ZSTD_maxCLevel()));
  }
  ASSIGN_OR_RETURN(auto oldf, GgufFile::open(old_path));
  ASSIGN_OR_RETURN(auto newf, GgufFile::open(new_path));
  const auto ob = oldf->bytes();
  const auto nb = newf->bytes();

  emit_phase(opts, "hashing source and target");
  Header h;
  h.source_size = ob.size();
  h.target_size = nb.size();
  h.source_sha = sha256(ob.data(), ob.size());
  h.target_sha = sha256(nb.data(), nb.size());

  DeltaStats st;
  st.target_bytes = nb.size();
  Planner plan{ob.data(), nb.data(), opts.chunk_bytes, opts.ref_margin_bytes, {}, {}};
  // Metadata region: header, KV pairs, tensor infos and the padding up to the data section.
  plan.add(SegKind::kMetadata, "", 0, newf->data_offset(), 0, oldf->data_offset(), false);
  st.metadata_changed = !(newf->data_offset() == oldf->data_offset() &&
                          std::memcmp(nb.data(), ob.data(), newf->data_offset()) == 0);
  std::vector<const GgufTensorInfo*> order;
  for (const auto& t : newf->tensors()) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  uint64_t pos = newf->data_offset();
  for (const GgufTensorInfo* t : order) {
    const uint64_t start = newf->data_offset() + t->offset;
    if (start < pos) {
      return Status::unimplemented(
          fmt::format("'{}': tensor '{}' at offset {} overlaps the previous tensor (ends at {})",
                      new_path, t->name, start, pos));
    }
    if (start > pos) {
      // Padding: compared with the source bytes right after the previous copied range.
      uint64_t hint = 0;
      const bool h_ok = plan.last_copy_end(&hint) && hint <= ob.size();
      plan.add(SegKind::kGap, "", pos, start - pos, h_ok ? hint : 0,
               h_ok ? std::min<uint64_t>(start - pos, ob.size() - hint) : 0, false);
    }
    const GgufTensorInfo* o = oldf->find_tensor(t->name);
    if (o) {
      const uint64_t o_off = oldf->data_offset() + o->offset;
      const bool same = o->nbytes == t->nbytes && std::memcmp(o->data, t->data, t->nbytes) == 0;
      (same ? st.tensors_same : st.tensors_changed)++;
      plan.add(SegKind::kTensor, t->name, start, t->nbytes, o_off, o->nbytes, o->type == t->type);
    } else {
      st.tensors_added++;
      plan.add(SegKind::kTensor, t->name, start, t->nbytes, 0, 0, false);
    }
    pos = start + t->nbytes;
  }
  if (pos < nb.size()) {
    uint64_t hint = 0;
    const bool h_ok = plan.last_copy_end(&hint) && hint <= ob.size();
    plan.add(SegKind::kGap, "", pos, nb.size() - pos, h_ok ? hint : 0,
             h_ok ? std::min<uint64_t>(nb.size() - pos, ob.size() - hint) : 0, false);
  }
  plan.merge_spans();
  for (const auto& t : oldf->tensors()) {
    if (!newf->find_tensor(t.name)) st.tensors_removed++;
  }
  if (plan.segs.size() > kMaxSegments) {
    return Status::unimplemented(fmt::format("'{}' has {} segments; the format allows {}", new_path,
                                             plan.segs.size(), kMaxSegments));
  }
  h.n_segments = static_cast<uint32_t>(plan.segs.size());

  // Output: a temporary file next to the patch, renamed at the end.
  const std::string tmp = patch_path + kPartialSuffix;
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) {
    return Status::io(fmt::format("cannot create '{}': {}", tmp, errno_text(errno)));
  }
  auto fail = [&](Status s) {
    fd.reset();
    ::unlink(tmp.c_str());
    return s;
  };
  std::vector<uint8_t> placeholder(kHeaderSize, 0);
  if (Status s = write_all(fd.get(), {}, placeholder.data(), kHeaderSize, 0, tmp); !s.ok())
    return fail(s);
  uint64_t out_pos = kHeaderSize;
  Sha256Hasher body_hash;
  auto emit = [&](const std::vector<uint8_t>& b) -> Status {
    body_hash.update(b.data(), b.size());
    RETURN_IF_ERROR(write_all(fd.get(), {}, b.data(), b.size(), out_pos, tmp));
    out_pos += b.size();
    return Status::ok_status();
  };

  int threads = opts.threads > 0
                    ? opts.threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ThreadPool pool(threads);
  std::vector<ZSTD_CCtx*> cctx(static_cast<size_t>(threads));
  for (auto& c : cctx) c = ZSTD_createCCtx();
  struct CctxFree {
    std::vector<ZSTD_CCtx*>* v;
    ~CctxFree() {
      for (auto* c : *v) ZSTD_freeCCtx(c);
    }
  } cctx_free{&cctx};
  std::vector<std::vector<uint8_t>> scratch(static_cast<size_t>(threads));

  emit_phase(opts, "compressing");
  const size_t batch = static_cast<size_t>(threads) * 4;
  uint64_t done_bytes = 0;
  for (size_t b0 = 0; b0 < plan.jobs.size(); b0 += batch) {
    const size_t b1 = std::min(plan.jobs.size(), b0 + batch);
    std::atomic<size_t> next{b0};
    std::vector<Status> errs(static_cast<size_t>(threads));
    pool.parallel_for(static_cast<size_t>(threads), [&](size_t begin, size_t end, int) {
      for (size_t w = begin; w < end; ++w) {
        for (size_t i = next.fetch_add(1); i < b1; i = next.fetch_add(1)) {
          Status s = compress_job(cctx[w], ob.data(), opts.zstd_level, &plan.jobs[i], &scratch[w]);
          if (!s.ok() && errs[w].ok()) errs[w] = s;
        }
      }
    });
    for (const Status& s : errs)
      if (!s.ok()) return fail(s);
    for (size_t i = b0; i < b1; ++i) {
      Job& j = plan.jobs[i];
      const Segment& s = plan.segs[j.seg];
      std::vector<uint8_t> rec;
      if (i == s.first_job) {
        put_u8(rec, static_cast<uint8_t>(s.kind));
        put_varint(rec, s.name.size());
        put_bytes(rec, s.name.data(), s.name.size());
        put_varint(rec, s.size);
        if (s.kind == SegKind::kTensor) put_bytes(rec, s.sha.data(), 32);
        put_varint(rec, s.n_jobs);
      }
      put_u8(rec, static_cast<uint8_t>(j.kind));
      put_varint(rec, j.len);
      if (j.kind == ChunkKind::kCopy) put_varint(rec, j.ref_off);
      if (j.kind == ChunkKind::kPrefix || j.kind == ChunkKind::kSub) {
        put_varint(rec, j.ref_off);
        put_varint(rec, j.ref_len);
        put_varint(rec, j.frame.size());
      }
      switch (j.kind) {
        case ChunkKind::kZero:
          st.chunks_zero++;
          break;
        case ChunkKind::kCopy:
          st.chunks_copy++;
          break;
        case ChunkKind::kPrefix:
          st.chunks_prefix++;
          h.max_chunk = std::max<uint32_t>(h.max_chunk, static_cast<uint32_t>(j.len));
          h.max_ref = std::max<uint32_t>(h.max_ref, static_cast<uint32_t>(j.ref_len));
          break;
        case ChunkKind::kSub:
          st.chunks_sub++;
          h.max_chunk = std::max<uint32_t>(h.max_chunk, static_cast<uint32_t>(j.len));
          h.max_ref = std::max<uint32_t>(h.max_ref, static_cast<uint32_t>(j.ref_len));
          break;
      }
      h.max_frame = std::max<uint32_t>(h.max_frame, static_cast<uint32_t>(j.frame.size()));
      if (Status e = emit(rec); !e.ok()) return fail(e);
      if (Status e = emit(j.frame); !e.ok()) return fail(e);
      done_bytes += j.len;
      std::vector<uint8_t>().swap(j.frame);
      if (opts.progress) opts.progress(done_bytes, nb.size());
    }
  }
  h.body_size = out_pos - kHeaderSize;
  {
    // patch_sha = SHA-256(body || header bytes [0, 120)).
    std::vector<uint8_t> pre = encode_header(h);
    body_hash.update(pre.data(), kPatchHashOffset);
    h.patch_sha = body_hash.finish();
  }
  const std::vector<uint8_t> hdr = encode_header(h);
  if (::pwrite(fd.get(), hdr.data(), hdr.size(), 0) != static_cast<ssize_t>(hdr.size())) {
    return fail(Status::io(fmt::format("writing header of '{}': {}", tmp, errno_text(errno))));
  }
  if (::fsync(fd.get()) != 0) {
    return fail(Status::io(fmt::format("fsync '{}': {}", tmp, errno_text(errno))));
  }
  fd.reset();
  if (::rename(tmp.c_str(), patch_path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return Status::io(fmt::format("renaming '{}' to '{}': {}", tmp, patch_path, errno_text(e)));
  }
  st.patch_bytes = out_pos;
  if (stats) *stats = st;
  return Status::ok_status();
}

namespace {

// Reads and checks the header; with `verify`, first checks the patch SHA-256 (body and
// header) so that any altered byte is reported as such before any field is trusted.
StatusOr<Header> read_header(int fd, const std::string& path, uint64_t* patch_size, bool verify,
                             const DeltaOptions* opts = nullptr) {
  ASSIGN_OR_RETURN(uint64_t size, file_size_of(fd, path));
  if (size < kHeaderSize) {
    return Status::data_loss(fmt::format(
        "patch '{}' is truncated: {} bytes, the header alone is {}", path, size, kHeaderSize));
  }
  uint8_t buf[kHeaderSize];
  RETURN_IF_ERROR(pread_exact(fd, buf, kHeaderSize, 0, path));
  if (std::memcmp(buf, kMagic, 8) != 0) {
    return Status::data_loss(fmt::format(
        "'{}' is not an edgelm delta patch: bad magic at offset 0 (expected \"ELMDELTA\")", path));
  }
  if (verify) {
    if (opts) emit_phase(*opts, "verifying patch");
    Sha256Hasher ph;
    std::vector<uint8_t> b(kIoBuffer);
    for (uint64_t off = kHeaderSize; off < size;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(b.size(), size - off));
      RETURN_IF_ERROR(pread_exact(fd, b.data(), n, off, path));
      ph.update(b.data(), n);
      off += n;
    }
    ph.update(buf, kPatchHashOffset);
    const Sha256 got = ph.finish();
    if (std::memcmp(got.data(), buf + kPatchHashOffset, 32) != 0) {
      Sha256 want;
      std::memcpy(want.data(), buf + kPatchHashOffset, 32);
      return Status::data_loss(fmt::format(
          "patch '{}' is corrupt or was tampered with: its SHA-256 is {}, its header says {} "
          "(or it is truncated)",
          path, to_hex(got), to_hex(want)));
    }
  }
  Header h;
  RETURN_IF_ERROR(decode_header(buf, path, &h));
  if (h.body_size != size - kHeaderSize) {
    return Status::data_loss(fmt::format(
        "patch '{}' has {} bytes after the header, the header says {} (truncated or extended)",
        path, size - kHeaderSize, h.body_size));
  }
  *patch_size = size;
  return h;
}

struct Dctx {
  ZSTD_DCtx* p = ZSTD_createDCtx();
  ~Dctx() { ZSTD_freeDCtx(p); }
};

}  // namespace

StatusOr<DeltaInfo> read_delta_info(const std::string& patch_path) {
  Fd fd(::open(patch_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return Status::io(fmt::format("cannot open patch '{}': {}", patch_path, errno_text(errno)));
  }
  uint64_t size = 0;
  ASSIGN_OR_RETURN(Header h, read_header(fd.get(), patch_path, &size, /*verify=*/false));
  DeltaInfo info;
  info.source_sha256 = h.source_sha;
  info.target_sha256 = h.target_sha;
  info.source_size = h.source_size;
  info.target_size = h.target_size;
  info.patch_size = size;
  info.version = h.version;
  info.segments = h.n_segments;
  info.max_chunk = h.max_chunk;
  info.max_ref = h.max_ref;
  info.max_frame = h.max_frame;
  return info;
}

Status apply_delta(const std::string& old_path, const std::string& patch_path,
                   const std::string& out_path, const DeltaOptions& opts) {
  Fd pfd(::open(patch_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (pfd.get() < 0) {
    return Status::io(fmt::format("cannot open patch '{}': {}", patch_path, errno_text(errno)));
  }
  uint64_t patch_size = 0;
  ASSIGN_OR_RETURN(Header h,
                   read_header(pfd.get(), patch_path, &patch_size, opts.verify_patch_hash, &opts));

  // Already installed? (a rerun after a kill that happened after the rename)
  {
    Fd ofd(::open(out_path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (ofd.get() >= 0 && ::fstat(ofd.get(), &st) == 0 && S_ISREG(st.st_mode) &&
        static_cast<uint64_t>(st.st_size) == h.target_size) {
      emit_phase(opts, "checking existing output");
      auto got = hash_fd_range(ofd.get(), h.target_size, out_path);
      if (got.ok() && *got == h.target_sha) {
        emit_phase(opts, fmt::format("'{}' already holds the target (sha256 {}); nothing to do",
                                     out_path, to_hex(h.target_sha)));
        if (opts.progress) opts.progress(h.target_size, h.target_size);
        return Status::ok_status();
      }
    }
  }

  emit_phase(opts, "verifying source");
  Fd ofd(::open(old_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (ofd.get() < 0) {
    return Status::io(
        fmt::format("cannot open source model '{}': {}", old_path, errno_text(errno)));
  }
  ASSIGN_OR_RETURN(uint64_t old_size, file_size_of(ofd.get(), old_path));
  if (old_size != h.source_size) {
    return Status::failed_precondition(fmt::format(
        "wrong source model: '{}' is {} bytes, the patch '{}' was made from a {}-byte file "
        "(sha256 {})",
        old_path, old_size, patch_path, h.source_size, to_hex(h.source_sha)));
  }
  ASSIGN_OR_RETURN(Sha256 old_sha, hash_fd_range(ofd.get(), old_size, old_path));
  if (old_sha != h.source_sha) {
    return Status::failed_precondition(
        fmt::format("wrong source model: SHA-256 of '{}' is {}, the patch '{}' expects {}",
                    old_path, to_hex(old_sha), patch_path, to_hex(h.source_sha)));
  }

  // Temporary output next to the target; a leftover from a killed run is truncated and reused.
  const std::string tmp = out_path + kPartialSuffix;
  Fd tfd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (tfd.get() < 0) {
    return Status::io(
        fmt::format("cannot create '{}' (next to the output): {}", tmp, errno_text(errno)));
  }
  if (::flock(tfd.get(), LOCK_EX | LOCK_NB) != 0) {
    return Status::failed_precondition(
        fmt::format("'{}' is locked: another apply is writing this output", tmp));
  }
  auto fail = [&](Status s) {
    ::unlink(tmp.c_str());
    tfd.reset();
    return s;
  };
  if (::ftruncate(tfd.get(), 0) != 0) {
    return fail(Status::io(fmt::format("truncating '{}': {}", tmp, errno_text(errno))));
  }

  emit_phase(opts, "applying");
  std::vector<uint8_t> frame(h.max_frame), out(std::max<size_t>(h.max_chunk, kIoBuffer)),
      ref(h.max_ref);
  Dctx dctx;
  if (!dctx.p) return fail(Status::internal("ZSTD_createDCtx failed"));
  PatchReader r(pfd.get(), kHeaderSize, patch_size, patch_path);
  Sha256Hasher file_hash;
  uint64_t pos = 0;

  bool seg_hashing = false;  // only tensor segments carry their own SHA-256
  auto emit = [&](const uint8_t* p, size_t n, Sha256Hasher& seg_hash) -> Status {
    if (seg_hashing) seg_hash.update(p, n);
    file_hash.update(p, n);
    RETURN_IF_ERROR(write_all(tfd.get(), opts.write_fn, p, n, pos, tmp));
    pos += n;
    if (opts.progress) opts.progress(pos, h.target_size);
    return Status::ok_status();
  };

  auto run = [&]() -> Status {
    for (uint32_t si = 0; si < h.n_segments; ++si) {
      const uint64_t rec_at = r.pos();
      uint8_t kb = 0;
      RETURN_IF_ERROR(r.read(&kb, 1, "segment kind"));
      const auto kind = static_cast<SegKind>(kb);
      if (kb < 1 || kb > 4) {
        return Status::data_loss(fmt::format("patch '{}': segment {} at offset {} has kind {}",
                                             patch_path, si, rec_at, kb));
      }
      uint64_t name_len = 0;
      RETURN_IF_ERROR(r.read_varint(&name_len, "segment name length"));
      if (name_len > kMaxNameLen) {
        return Status::data_loss(
            fmt::format("patch '{}': segment {} at offset {}: name length {} exceeds {}",
                        patch_path, si, rec_at, name_len, kMaxNameLen));
      }
      std::string name(name_len, '\0');
      RETURN_IF_ERROR(r.read(name.data(), name_len, "segment name"));
      uint64_t seg_size = 0;
      RETURN_IF_ERROR(r.read_varint(&seg_size, "segment size"));
      Sha256 seg_sha{};
      const bool hashed = kind == SegKind::kTensor;
      if (hashed) RETURN_IF_ERROR(r.read(seg_sha.data(), 32, "tensor SHA-256"));
      uint64_t n_chunks = 0;
      RETURN_IF_ERROR(r.read_varint(&n_chunks, "chunk count"));
      const std::string what =
          kind == SegKind::kTensor ? fmt::format("tensor '{}'", name) : seg_kind_name(kind);
      const uint64_t seg_off = pos;
      if (seg_size > h.target_size - pos) {
        return Status::data_loss(fmt::format(
            "patch '{}': {} (segment {} at offset {}) has {} bytes; only {} of the {}-byte "
            "target remain",
            patch_path, what, si, rec_at, seg_size, h.target_size - pos, h.target_size));
      }
      if (n_chunks > seg_size) {
        return Status::data_loss(fmt::format("patch '{}': {} has {} chunks for {} bytes",
                                             patch_path, what, n_chunks, seg_size));
      }
      Sha256Hasher seg_hash;
      seg_hashing = hashed;
      uint64_t seg_done = 0;
      for (uint64_t ci = 0; ci < n_chunks; ++ci) {
        const uint64_t chunk_at = r.pos();
        uint8_t ck = 0;
        uint64_t len = 0, ref_off = 0, ref_len = 0, frame_len = 0;
        RETURN_IF_ERROR(r.read(&ck, 1, "chunk kind"));
        RETURN_IF_ERROR(r.read_varint(&len, "chunk length"));
        if (ck == static_cast<uint8_t>(ChunkKind::kCopy)) {
          RETURN_IF_ERROR(r.read_varint(&ref_off, "copy offset"));
          ref_len = len;
        } else if (ck == static_cast<uint8_t>(ChunkKind::kPrefix) ||
                   ck == static_cast<uint8_t>(ChunkKind::kSub)) {
          RETURN_IF_ERROR(r.read_varint(&ref_off, "reference offset"));
          RETURN_IF_ERROR(r.read_varint(&ref_len, "reference length"));
          RETURN_IF_ERROR(r.read_varint(&frame_len, "frame length"));
        }
        auto bad = [&](const std::string& why) {
          return Status::data_loss(fmt::format("patch '{}': {} chunk {} at offset {}: {}",
                                               patch_path, what, ci, chunk_at, why));
        };
        if (len == 0 || len > seg_size - seg_done) {
          return bad(
              fmt::format("length {} with {} bytes of the segment left", len, seg_size - seg_done));
        }
        if (ref_len > h.source_size || ref_off > h.source_size - ref_len) {
          return bad(fmt::format("reference [{}, +{}) outside the {}-byte source", ref_off, ref_len,
                                 h.source_size));
        }
        switch (static_cast<ChunkKind>(ck)) {
          case ChunkKind::kZero: {
            std::fill(out.begin(), out.end(), 0);
            for (uint64_t left = len; left > 0;) {
              const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), left));
              RETURN_IF_ERROR(emit(out.data(), n, seg_hash));
              left -= n;
            }
            break;
          }
          case ChunkKind::kCopy: {
            for (uint64_t left = len, o = ref_off; left > 0;) {
              const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), left));
              RETURN_IF_ERROR(pread_exact(ofd.get(), out.data(), n, o, old_path));
              RETURN_IF_ERROR(emit(out.data(), n, seg_hash));
              left -= n;
              o += n;
            }
            break;
          }
          case ChunkKind::kPrefix:
          case ChunkKind::kSub: {
            const bool sub = static_cast<ChunkKind>(ck) == ChunkKind::kSub;
            if (len > h.max_chunk || ref_len > h.max_ref || frame_len > h.max_frame) {
              return bad(fmt::format(
                  "chunk {} / reference {} / frame {} bytes exceed the header's {} / {} / {}", len,
                  ref_len, frame_len, h.max_chunk, h.max_ref, h.max_frame));
            }
            if (sub && ref_len > len) return bad("difference reference longer than the chunk");
            RETURN_IF_ERROR(r.read(frame.data(), frame_len, "chunk frame"));
            if (ref_len)
              RETURN_IF_ERROR(pread_exact(ofd.get(), ref.data(), ref_len, ref_off, old_path));
            size_t rc = ZSTD_DCtx_reset(dctx.p, ZSTD_reset_session_and_parameters);
            if (!ZSTD_isError(rc) && !sub && ref_len) {
              rc = ZSTD_DCtx_refPrefix(dctx.p, ref.data(), ref_len);
            }
            if (!ZSTD_isError(rc)) {
              rc = ZSTD_decompressDCtx(dctx.p, out.data(), len, frame.data(), frame_len);
            }
            if (ZSTD_isError(rc)) return bad(fmt::format("zstd: {}", ZSTD_getErrorName(rc)));
            if (rc != len) {
              return bad(fmt::format("frame decodes to {} bytes, expected {}", rc, len));
            }
            if (sub) {
              for (size_t i = 0; i < ref_len; ++i) out[i] = static_cast<uint8_t>(out[i] + ref[i]);
            }
            RETURN_IF_ERROR(emit(out.data(), static_cast<size_t>(len), seg_hash));
            break;
          }
          default:
            return bad(fmt::format("unknown chunk kind {}", ck));
        }
        seg_done += len;
      }
      if (seg_done != seg_size) {
        return Status::data_loss(fmt::format("patch '{}': {} chunks cover {} of its {} bytes",
                                             patch_path, what, seg_done, seg_size));
      }
      const Sha256 got = seg_hash.finish();
      if (hashed && got != seg_sha) {
        return Status::data_loss(fmt::format(
            "patch '{}': {} at target offset {}: SHA-256 of the rebuilt bytes is {}, the patch "
            "says {}",
            patch_path, what, seg_off, to_hex(got), to_hex(seg_sha)));
      }
    }
    if (!r.at_end()) {
      return Status::data_loss(
          fmt::format("patch '{}': {} unread bytes after the last segment "
                      "(offset {})",
                      patch_path, patch_size - r.pos(), r.pos()));
    }
    if (pos != h.target_size) {
      return Status::data_loss(fmt::format("patch '{}' rebuilds {} bytes, its header says {}",
                                           patch_path, pos, h.target_size));
    }
    const Sha256 got = file_hash.finish();
    if (got != h.target_sha) {
      return Status::data_loss(
          fmt::format("patch '{}': SHA-256 of the rebuilt file is {}, the header says {}",
                      patch_path, to_hex(got), to_hex(h.target_sha)));
    }
    emit_phase(opts, "syncing");
    if (::fsync(tfd.get()) != 0) {
      return Status::io(fmt::format("fsync '{}': {}", tmp, errno_text(errno)));
    }
    return Status::ok_status();
  };
  if (Status s = run(); !s.ok()) return fail(s);

  if (::rename(tmp.c_str(), out_path.c_str()) != 0) {
    return fail(
        Status::io(fmt::format("renaming '{}' to '{}': {}", tmp, out_path, errno_text(errno))));
  }
  tfd.reset();
  // Make the rename durable.
  Fd dfd(::open(parent_dir(out_path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() >= 0) ::fsync(dfd.get());
  return Status::ok_status();
}

}  // namespace edgelm::update
