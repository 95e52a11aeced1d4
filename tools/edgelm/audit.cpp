// `edgelm audit MODEL [--json] [--strict-quant] [--touch]`: loads MODEL as `edgelm run` would and
// prints, per tensor, the stored type, the type the kernels execute, file/exec bytes and the
// resident bytes of its mapping, flags tensors converted at load, and a summary of expected vs
// actual memory (engine/audit.h). --strict-quant refuses to load a model that needs conversion
// (exit 1); --touch runs one token first so that the resident column shows a warmed model.
#include "engine/audit.h"

#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>

#include "model/context.h"
#include "model/model.h"
#include "subcommands.h"

namespace edgelm::cli {

namespace {

struct AuditOptions {
  std::string model;
  bool json = false;
  bool strict_quant = false;
  bool touch = false;
};

int run_audit(const AuditOptions& o) {
  ModelOptions mo;
  mo.log_summary = false;
  mo.strict_quant = o.strict_quant;
  auto model = Model::load(o.model, mo);
  if (!model.ok()) return report_error(model.status());
  if (o.touch) {
    auto ctx = Context::create(**model, {.n_ctx = 8, .n_threads = 1});
    if (!ctx.ok()) return report_error(ctx.status());
    const int32_t tok = 0;
    auto r = (*ctx)->eval(std::span<const int32_t>(&tok, 1));
    if (!r.ok()) return report_error(r.status());
  }
  LoadAudit a = audit_model(**model);
  if (o.json) {
    fmt::print("{}\n", a.to_json().dump(2));
  } else {
    fmt::print("{}", a.to_text());
  }
  return 0;
}

}  // namespace

void register_audit(CLI::App& app) {
  auto o = std::make_shared<AuditOptions>();
  CLI::App* sub =
      app.add_subcommand("audit", "Per-tensor load audit: stored vs executed types, memory");
  sub->add_option("MODEL", o->model, "GGUF model file")->required();
  sub->add_flag("--json", o->json, "Print one JSON document instead of the table");
  sub->add_flag("--strict-quant", o->strict_quant,
                "Fail (exit 1) if any tensor would be converted at load");
  sub->add_flag("--touch", o->touch, "Run one token first (resident bytes of a warmed model)");
  sub->footer(
      "Environment: EDGELM_DISABLE_KERNEL=q4_K,... treats those types as kernel-less (the loader\n"
      "converts them to F16 at load; the audit shows it). Exit status: 0 ok, 1 error.");
  sub->callback([o] { exit_with(run_audit(*o)); });
}

}  // namespace edgelm::cli
