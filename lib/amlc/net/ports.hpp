// TCP ports on 127.0.0.1: whether one is free to listen on, and a free one chosen by the kernel (service ports).
#pragma once

namespace amlc::net {

bool local_port_free(int port);
int pick_free_port();

}  // namespace amlc::net
