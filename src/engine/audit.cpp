#include "engine/audit.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <map>

#include "kernels/kernels.h"

namespace edgelm {
namespace {

// Resident bytes of [p, p + n) in page granularity (a partly covered page counts its overlap).
bool resident_bytes(const uint8_t* p, size_t n, size_t* out) {
  *out = 0;
  if (n == 0 || p == nullptr) return true;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p);
  const uintptr_t end = begin + n;
  const uintptr_t first = begin / page * page;
  const size_t n_pages = (end - first + page - 1) / page;
  std::vector<unsigned char> vec(n_pages);
  if (mincore(reinterpret_cast<void*>(first), end - first, vec.data()) != 0) return false;
  for (size_t i = 0; i < n_pages; ++i) {
    if (!(vec[i] & 1)) continue;
    const uintptr_t lo = std::max<uintptr_t>(first + i * page, begin);
    const uintptr_t hi = std::min<uintptr_t>(first + (i + 1) * page, end);
    *out += hi - lo;
  }
  return true;
}

std::string mib(size_t b) { return fmt::format("{:.2f} MiB", b / 1048576.0); }

}  // namespace

const char* file_type_name(uint32_t ft) {
  switch (ft) {
    case 0:
      return "ALL_F32";
    case 1:
      return "MOSTLY_F16";
    case 2:
      return "MOSTLY_Q4_0";
    case 3:
      return "MOSTLY_Q4_1";
    case 7:
      return "MOSTLY_Q8_0";
    case 8:
      return "MOSTLY_Q5_0";
    case 9:
      return "MOSTLY_Q5_1";
    case 10:
      return "MOSTLY_Q2_K";
    case 11:
      return "MOSTLY_Q3_K_S";
    case 12:
      return "MOSTLY_Q3_K_M";
    case 13:
      return "MOSTLY_Q3_K_L";
    case 14:
      return "MOSTLY_Q4_K_S";
    case 15:
      return "MOSTLY_Q4_K_M";
    case 16:
      return "MOSTLY_Q5_K_S";
    case 17:
      return "MOSTLY_Q5_K_M";
    case 18:
      return "MOSTLY_Q6_K";
    case 32:
      return "MOSTLY_BF16";
    default:
      return "unknown";
  }
}

LoadAudit audit_model(const Model& model) {
  LoadAudit a;
  const GgufFile& f = model.gguf();
  a.path = f.path();
  a.file_size = f.file_size();
  a.kernels = best_ops().name;
  if (auto ft = f.get_uint("general.file_type")) {
    a.file_type = fmt::format("{} ({})", file_type_name(static_cast<uint32_t>(*ft)), *ft);
  }
  std::map<std::string, const TensorLoadRecord*> records;
  for (const TensorLoadRecord& r : model.weights().load_records) records[r.name] = &r;
  for (const GgufTensorInfo& t : f.tensors()) {
    TensorAudit ta;
    ta.name = t.name;
    ta.shape = t.shape_string();
    ta.stored_type = ta.exec_type = t.type;
    ta.file_bytes = t.nbytes;
    ta.mapped_bytes = t.nbytes;
    if (!resident_bytes(t.data, t.nbytes, &ta.resident_bytes)) a.resident_known = false;
    auto it = records.find(t.name);
    if (it != records.end()) {
      const TensorLoadRecord& r = *it->second;
      ta.used = true;
      ta.exec_type = r.exec_type;
      ta.exec_bytes = r.exec_bytes;
      ta.converted = r.converted;
      ta.layout = r.layout;
      ta.note = r.reason;
      if (r.layout != PackedLayout::kNone) {
        ta.note = fmt::format("repacked at load to {} (same precision, interleaved rows)",
                              packed_layout_name(r.layout));
        ++a.n_repacked;
        a.repacked_heap_bytes += r.exec_bytes;
      }
      ++a.n_used;
      a.expected_bytes += ta.file_bytes;
      if (r.converted) {
        ++a.n_converted;
        a.converted_heap_bytes += r.exec_bytes;
        a.actual_bytes += r.exec_bytes;
      } else {
        a.actual_bytes += ta.file_bytes;
      }
    } else {
      ta.note = "not used by the model";
    }
    a.resident_bytes += ta.resident_bytes;
    a.tensors.push_back(std::move(ta));
  }
  if (!a.resident_known) a.resident_bytes = 0;
  return a;
}

std::string LoadAudit::to_text() const {
  std::string s = fmt::format("file:      {} ({})\n", path, mib(file_size));
  if (!file_type.empty()) s += fmt::format("file type: {}\n", file_type);
  s += fmt::format("kernels:   {}\n\n", kernels);
  s += fmt::format("{:<34} {:<15} {:>7} {:>7} {:>12} {:>12} {:>12}  {}\n", "tensor", "shape",
                   "stored", "exec", "file bytes", "exec bytes", "resident", "note");
  for (const TensorAudit& t : tensors) {
    s += fmt::format("{:<34} {:<15} {:>7} {:>7} {:>12} {:>12} {:>12}  {}{}\n", t.name, t.shape,
                     type_name(t.stored_type), t.used ? type_name(t.exec_type) : "-", t.file_bytes,
                     t.used ? t.exec_bytes : 0,
                     resident_known ? std::to_string(t.resident_bytes) : std::string("?"),
                     t.converted ? "CONVERTED AT LOAD: " : "", t.note);
  }
  s += "\nsummary:\n";
  std::map<std::string, std::pair<size_t, size_t>> by_type;  // "stored->exec" -> (n, bytes)
  for (const TensorAudit& t : tensors) {
    if (!t.used) continue;
    std::string k = type_name(t.stored_type);
    if (t.converted) k += std::string(" -> ") + type_name(t.exec_type);
    by_type[k].first++;
    by_type[k].second += t.file_bytes;
  }
  for (const auto& [k, v] : by_type)
    s += fmt::format("  {:<14} {:>4} tensors  {:>12}\n", k, v.first, mib(v.second));
  s += fmt::format("  tensors used:        {} of {}\n", n_used, tensors.size());
  s += fmt::format("  converted at load:   {}{}\n", n_converted,
                   n_converted ? " (kernels do NOT run the stored quantization for these)" : "");
  s += fmt::format("  expected memory:     {} (used tensors as stored in the file)\n",
                   mib(expected_bytes));
  s +=
      fmt::format("  repacked at load:    {}{}\n", n_repacked,
                  n_repacked ? " (same type and precision, rows interleaved for the kernels)" : "");
  s += fmt::format(
      "  actual memory:       {} (mapped {} + converted copies {} + repacked copies {})\n",
      mib(actual_bytes), mib(actual_bytes - converted_heap_bytes - repacked_heap_bytes),
      mib(converted_heap_bytes), mib(repacked_heap_bytes));
  if (expected_bytes > 0) {
    s += fmt::format("  actual / expected:   {:.3f}\n",
                     static_cast<double>(actual_bytes) / static_cast<double>(expected_bytes));
  }
  s += resident_known
           ? fmt::format("  resident now:        {} of the mapped tensor bytes (mincore)\n",
                         mib(resident_bytes))
           : std::string("  resident now:        unknown (mincore failed)\n");
  return s;
}

nlohmann::json LoadAudit::to_json() const {
  nlohmann::json j;
  j["path"] = path;
  j["file_size"] = file_size;
  j["file_type"] = file_type;
  j["kernels"] = kernels;
  j["tensors"] = nlohmann::json::array();
  for (const TensorAudit& t : tensors) {
    j["tensors"].push_back({{"name", t.name},
                            {"shape", t.shape},
                            {"stored_type", type_name(t.stored_type)},
                            {"exec_type", type_name(t.exec_type)},
                            {"used", t.used},
                            {"converted", t.converted},
                            {"layout", packed_layout_name(t.layout)},
                            {"note", t.note},
                            {"file_bytes", t.file_bytes},
                            {"exec_bytes", t.exec_bytes},
                            {"mapped_bytes", t.mapped_bytes},
                            {"resident_bytes", t.resident_bytes}});
  }
  j["summary"] = {{"tensors", tensors.size()},
                  {"used", n_used},
                  {"converted", n_converted},
                  {"repacked", n_repacked},
                  {"repacked_heap_bytes", repacked_heap_bytes},
                  {"expected_bytes", expected_bytes},
                  {"actual_bytes", actual_bytes},
                  {"converted_heap_bytes", converted_heap_bytes},
                  {"resident_bytes", resident_bytes},
                  {"resident_known", resident_known}};
  return j;
}

}  // namespace edgelm
