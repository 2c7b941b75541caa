//===- Communicator.cpp - Collectives between SPMD ranks ------------------===//
#include "runtime/Communicator.h"

moe::Communicator::~Communicator() = default;
