// edgelm quantize: placeholder until the owning change lands.
#include "subcommands.h"

namespace edgelm::cli {

// TODO(owner): register the quantize subcommand.
void register_quantize(CLI::App& app) {}

}  // namespace edgelm::cli
