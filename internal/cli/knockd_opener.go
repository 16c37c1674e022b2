package cli

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/portkit/portkit/firewall"
	"github.com/portkit/portkit/knock"
	"github.com/portkit/portkit/registry"
)

// newOpener is the firewall backend of `portkit knockd`: an opening in
// portkit's own nftables table (the firewall package), which the kernel
// expires by itself.
func newOpener(table string) (knock.Opener, error) {
	t := firewall.Table{Name: table}
	return knock.OpenerFunc(func(ctx context.Context, src netip.Addr, port uint16, proto string, d time.Duration) error {
		p, err := registry.ParseProto(proto)
		if err != nil || p == registry.AnyProto {
			return fmt.Errorf("open %s/%d for %v: not a transport protocol", proto, port, src)
		}
		return t.Open(ctx, src, port, p, d)
	}), nil
}
