// Package pionloop confines pion/webrtc's ICE to 127.0.0.1 over UDP4, for
// tests and single-machine setups on a host that has other interfaces:
// the five settings the real-client tests found necessary. It
// is used by transport/webrtc (Config.LoopbackOnly) and by the tests that
// build plain pion clients.
package pionloop

import (
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	pion "github.com/pion/webrtc/v4"
)

// Restrict makes se gather and accept loopback IPv4 candidates only,
// without mDNS.
func Restrict(se *pion.SettingEngine) {
	se.SetIncludeLoopbackCandidate(true) // without it pion offers no 127.0.0.1 candidate
	se.SetInterfaceFilter(func(n string) bool { return n == "lo" })
	se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
}

// ClientAPI is a plain pion client as an application would build it,
// pion's default codecs and interceptors, confined to loopback.
func ClientAPI() (*pion.API, error) {
	me := &pion.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	se := pion.SettingEngine{}
	Restrict(&se)
	return pion.NewAPI(pion.WithMediaEngine(me), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se)), nil
}
