// edgelm update / rollback / models: placeholder until the owning change lands.
#include "subcommands.h"

namespace edgelm::cli {

// TODO(owner): register the update subcommand.
void register_update(CLI::App& app) {}
// TODO(owner): register the rollback subcommand.
void register_rollback(CLI::App& app) {}
// TODO(owner): register the models subcommand.
void register_models(CLI::App& app) {}

}  // namespace edgelm::cli
