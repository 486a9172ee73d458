#include "storage/nonblocking.h"

namespace tern::storage {
namespace {

struct ThreadState {
  bool active = false;
  bool refused = false;
};
thread_local ThreadState t_state;

}  // namespace

NonBlockingReads::NonBlockingReads() { t_state = {true, false}; }
NonBlockingReads::~NonBlockingReads() { t_state = {}; }
bool NonBlockingReads::refused() const { return t_state.refused; }
bool NonBlockingReads::active() { return t_state.active; }
void NonBlockingReads::refuse() {
  if (t_state.active) t_state.refused = true;
}

}  // namespace tern::storage
