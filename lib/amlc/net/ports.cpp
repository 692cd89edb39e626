// Probing TCP ports on 127.0.0.1 by binding a socket to them (and closing it at once).
#include "amlc/net/ports.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"

namespace amlc::net {

namespace {

// Binds a new socket to 127.0.0.1:port (0: any free port); returns the bound port, or 0 if the bind failed.
int bind_loopback(int port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) sys_fail("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 0;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.sin_port);
}

}  // namespace

bool local_port_free(int port) { return bind_loopback(port) != 0; }

int pick_free_port() {
  int port = bind_loopback(0);
  if (port == 0) sys_fail("cannot find a free port on 127.0.0.1");
  return port;
}

}  // namespace amlc::net
