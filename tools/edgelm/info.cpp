// `edgelm info MODEL [--json] [--no-tensors]`: a GGUF file's header, metadata, tensors (type,
// shape, bytes), a per-type summary and the parameter count. Works on any valid GGUF (vocab-only
// files too). The text form is for people; --json prints one JSON document:
//   {"path", "version", "alignment", "data_offset", "file_size", "metadata": {key: value},
//    "tensors": [{"name","type","shape","offset","bytes","n_elements"}],
//    "type_summary": {"f16": {"tensors","bytes","n_elements"}}, "n_params", "hparams"?}
// Metadata arrays with more than 64 elements appear as {"array_type","count"} (vocabularies
// are long); shorter ones in full.
#include <fmt/format.h>

#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "gguf/reader.h"
#include "model/hparams.h"
#include "subcommands.h"

namespace edgelm::cli {

namespace {

struct InfoOptions {
  std::string path;
  bool json = false;
  bool tensors = true;
};

nlohmann::ordered_json value_json(const GgufValue& v) {
  auto scalar_elem = [&](uint64_t i) -> nlohmann::ordered_json {
    switch (v.array_type) {
      case GgufType::kF32:
      case GgufType::kF64:
        return v.array_f64(i);
      case GgufType::kBool:
        return v.array_i64(i) != 0;
      default:
        return v.array_i64(i);
    }
  };
  switch (v.type) {
    case GgufType::kString:
      return std::string(v.str);
    case GgufType::kBool:
      return v.u64 != 0;
    case GgufType::kF32:
    case GgufType::kF64:
      return v.f64;
    case GgufType::kI8:
    case GgufType::kI16:
    case GgufType::kI32:
    case GgufType::kI64:
      return v.i64;
    case GgufType::kArray: {
      if (v.array_count > 64) {
        return {{"array_type", gguf_type_name(v.array_type)}, {"count", v.array_count}};
      }
      auto arr = nlohmann::ordered_json::array();
      for (uint64_t i = 0; i < v.array_count; ++i) {
        if (v.array_type == GgufType::kString) {
          arr.push_back(std::string(v.strings[i]));
        } else {
          arr.push_back(scalar_elem(i));
        }
      }
      return arr;
    }
    default:
      return v.u64;
  }
}

std::string human_bytes(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", static_cast<double>(b) / (1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.2f} MiB", static_cast<double>(b) / (1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.2f} KiB", static_cast<double>(b) / (1ull << 10));
  return fmt::format("{} B", b);
}

std::string human_count(int64_t n) {
  if (n >= 1000000000) return fmt::format("{:.2f}B", n / 1e9);
  if (n >= 1000000) return fmt::format("{:.2f}M", n / 1e6);
  if (n >= 1000) return fmt::format("{:.2f}K", n / 1e3);
  return std::to_string(n);
}

struct TypeSum {
  int tensors = 0;
  uint64_t bytes = 0;
  int64_t elements = 0;
};

int run_info(const InfoOptions& o) {
  auto file_or = GgufFile::open(o.path);
  if (!file_or.ok()) return report_error(file_or.status());
  const GgufFile& f = **file_or;

  std::map<std::string, TypeSum> sums;
  int64_t n_params = 0;
  uint64_t tensor_bytes = 0;
  for (const auto& t : f.tensors()) {
    TypeSum& s = sums[type_name(t.type)];
    ++s.tensors;
    s.bytes += t.nbytes;
    s.elements += t.n_elements;
    n_params += t.n_elements;
    tensor_bytes += t.nbytes;
  }
  auto hp = HParams::from_gguf(f);

  if (o.json) {
    nlohmann::ordered_json j;
    j["path"] = f.path();
    j["version"] = f.version();
    j["alignment"] = f.alignment();
    j["data_offset"] = f.data_offset();
    j["file_size"] = f.file_size();
    nlohmann::ordered_json md = nlohmann::ordered_json::object();
    for (const auto& [k, v] : f.metadata()) md[k] = value_json(v);
    j["metadata"] = md;
    if (o.tensors) {
      auto ts = nlohmann::ordered_json::array();
      for (const auto& t : f.tensors()) {
        ts.push_back({{"name", t.name},
                      {"type", type_name(t.type)},
                      {"shape", t.dims},
                      {"offset", t.offset},
                      {"bytes", t.nbytes},
                      {"n_elements", t.n_elements}});
      }
      j["tensors"] = ts;
    }
    nlohmann::ordered_json sj = nlohmann::ordered_json::object();
    for (const auto& [name, s] : sums) {
      sj[name] = {{"tensors", s.tensors}, {"bytes", s.bytes}, {"n_elements", s.elements}};
    }
    j["type_summary"] = sj;
    j["n_tensors"] = f.tensors().size();
    j["tensor_bytes"] = tensor_bytes;
    j["n_params"] = n_params;
    if (hp.ok()) j["hparams"] = hp->to_string();
    // error_handler::replace: metadata strings from the file need not be valid UTF-8.
    std::puts(j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
    return 0;
  }

  fmt::print("file:        {}\n", f.path());
  fmt::print("format:      GGUF v{}, alignment {}, data at offset {}, {} ({} bytes)\n", f.version(),
             f.alignment(), f.data_offset(), human_bytes(f.file_size()), f.file_size());
  if (hp.ok()) fmt::print("model:       {}\n", hp->to_string());
  fmt::print("parameters:  {} ({})\n", human_count(n_params), n_params);
  fmt::print("\nmetadata ({} keys):\n", f.metadata().size());
  for (const auto& [k, v] : f.metadata()) {
    fmt::print("  {:<44} {:<8} {}\n", k, gguf_type_name(v.type), v.to_string());
  }
  if (o.tensors) {
    fmt::print("\ntensors ({}):\n", f.tensors().size());
    fmt::print("  {:<40} {:<6} {:<22} {:>12}\n", "name", "type", "shape", "bytes");
    for (const auto& t : f.tensors()) {
      fmt::print("  {:<40} {:<6} {:<22} {:>12}\n", t.name, type_name(t.type), t.shape_string(),
                 t.nbytes);
    }
  }
  fmt::print("\ntensor types:\n");
  for (const auto& [name, s] : sums) {
    fmt::print("  {:<6} {:>5} tensors  {:>12} params  {:>12}  ({:.1f}% of weights)\n", name,
               s.tensors, s.elements, human_bytes(s.bytes),
               tensor_bytes
                   ? 100.0 * static_cast<double>(s.bytes) / static_cast<double>(tensor_bytes)
                   : 0.0);
  }
  fmt::print("  total  {:>5} tensors  {:>12} params  {:>12}\n", f.tensors().size(), n_params,
             human_bytes(tensor_bytes));
  return 0;
}

}  // namespace

void register_info(CLI::App& app) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* sub = app.add_subcommand("info",
                                     "Show a GGUF file's metadata, tensors (type, shape, bytes), "
                                     "type summary and parameter count");
  sub->add_option("model", o->path, "GGUF file")->required();
  sub->add_flag("--json", o->json, "Print one JSON document instead of text");
  sub->add_flag("!--no-tensors", o->tensors, "Leave out the per-tensor list");
  sub->callback([o] { exit_with(run_info(*o)); });
}

}  // namespace edgelm::cli
