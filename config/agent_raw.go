package config

import (
	edgesync "github.com/edge-sync/edge-sync"
)

// The raw* structs mirror the HCL file. Pointers and strings tell "not
// written" (keep the default) from a value; apply turns them into the typed
// config and reports bad values at their file:line.

type rawAgent struct {
	Name           *string       `hcl:"name,optional"`
	DataDir        *string       `hcl:"data_dir,optional"`
	DeltaBaseBytes *string       `hcl:"delta_base_bytes,optional"`
	Log            *rawLog       `hcl:"log,block"`
	TLS            *rawTLS       `hcl:"tls,block"`
	Outbox         *rawOutbox    `hcl:"outbox,block"`
	Monitor        *rawMonitor   `hcl:"monitor,block"`
	Profiles       []rawProfile  `hcl:"profile,block"`
	Endpoints      []rawEndpoint `hcl:"endpoint,block"`
	Control        *rawControl   `hcl:"control,block"`
	Metrics        *rawMetrics   `hcl:"metrics,block"`
}

type rawLog struct {
	Level  *string `hcl:"level,optional"`
	Format *string `hcl:"format,optional"`
}

type rawTLS struct {
	CA   *string `hcl:"ca,optional"`
	Cert *string `hcl:"cert,optional"`
	Key  *string `hcl:"key,optional"`
}

type rawOutbox struct {
	Path       *string           `hcl:"path,optional"`
	MaxOps     *int              `hcl:"max_ops,optional"`
	MaxBytes   *string           `hcl:"max_bytes,optional"`
	MaxOpBytes *string           `hcl:"max_op_bytes,optional"`
	DefaultTTL map[string]string `hcl:"default_ttl,optional"`
}

type rawMonitor struct {
	ProbeInterval     *string        `hcl:"probe_interval,optional"`
	SampleInterval    *string        `hcl:"sample_interval,optional"`
	Window            *string        `hcl:"window,optional"`
	LossWindow        *string        `hcl:"loss_window,optional"`
	MinSamples        *int           `hcl:"min_samples,optional"`
	HysteresisPercent *float64       `hcl:"hysteresis_percent,optional"`
	ProbeTimeout      *string        `hcl:"probe_timeout,optional"`
	ProbeBudgetPct    *float64       `hcl:"probe_budget_percent,optional"`
	Active            *bool          `hcl:"active,optional"`
	Passive           *bool          `hcl:"passive,optional"`
	Thresholds        *rawThresholds `hcl:"thresholds,block"`
	IdleAfter         *string        `hcl:"idle_after,optional"`
	IdleSample        *string        `hcl:"idle_sample_interval,optional"`
	IdleProbe         *string        `hcl:"idle_probe_interval,optional"`
}

type rawThresholds struct {
	FiberMinMbps        *float64 `hcl:"fiber_min_mbps,optional"`
	FiberMaxRTT         *string  `hcl:"fiber_max_rtt,optional"`
	BroadbandMinMbps    *float64 `hcl:"broadband_min_mbps,optional"`
	BroadbandMaxRTT     *string  `hcl:"broadband_max_rtt,optional"`
	MobileMinMbps       *float64 `hcl:"mobile_min_mbps,optional"`
	MobileMaxRTT        *string  `hcl:"mobile_max_rtt,optional"`
	SatelliteMinRTT     *string  `hcl:"satellite_min_rtt,optional"`
	IntermittentLossPct *float64 `hcl:"intermittent_loss_percent,optional"`
	MaxMissed           *int     `hcl:"max_missed,optional"`
}

type rawProfile struct {
	Class       string  `hcl:"class,label"`
	Mode        *string `hcl:"mode,optional"`
	Compression *bool   `hcl:"compression,optional"`
	Level       *string `hcl:"compression_level,optional"`
	Chunk       *string `hcl:"chunk,optional"`
	Interval    *string `hcl:"interval,optional"`
	Concurrency *int    `hcl:"concurrency,optional"`

	SummaryOnly *bool     `hcl:"summary_only,optional"`
	Summaries   *[]string `hcl:"summary_priorities,optional"`
}

type rawEndpoint struct {
	Name       string      `hcl:"name,label"`
	Address    *string     `hcl:"address,optional"`
	Addresses  *[]string   `hcl:"addresses,optional"`
	FailBack   *string     `hcl:"fail_back,optional"`
	ServerName *string     `hcl:"server_name,optional"`
	Monitor    *rawMonitor `hcl:"monitor,block"`
	Budget     *rawBudget  `hcl:"budget,block"`
}

type rawControl struct {
	Socket       *string `hcl:"socket,optional"`
	TCP          *string `hcl:"tcp,optional"`
	TokenFile    *string `hcl:"token_file,optional"`
	MaxBodyBytes *string `hcl:"max_body_bytes,optional"`
}

type rawMetrics struct {
	Listen *string `hcl:"listen,optional"`
}

func (r *rawAgent) apply(l *errorList, c *Agent) {
	c.Name = pick(r.Name, c.Name)
	c.DataDir = pick(r.DataDir, c.DataDir)
	c.DeltaBaseBytes = parseSize(l, "delta_base_bytes", r.DeltaBaseBytes, c.DeltaBaseBytes)
	if r.Log != nil {
		r.Log.apply(&c.Log)
	}
	if r.TLS != nil {
		r.TLS.apply(&c.TLS)
	}
	if o := r.Outbox; o != nil {
		c.Outbox.Path = pick(o.Path, c.Outbox.Path)
		c.Outbox.MaxOps = pick(o.MaxOps, c.Outbox.MaxOps)
		c.Outbox.MaxBytes = parseSize(l, "outbox.max_bytes", o.MaxBytes, c.Outbox.MaxBytes)
		c.Outbox.MaxOpBytes = parseSize(l, "outbox.max_op_bytes", o.MaxOpBytes, c.Outbox.MaxOpBytes)
		for name, v := range o.DefaultTTL {
			field := "outbox.default_ttl." + name
			p, err := edgesync.ParsePriority(name)
			if err != nil {
				l.add(field, err)
				continue
			}
			c.Outbox.DefaultTTL[p] = parseDuration(l, field, &v, 0)
		}
	}
	if r.Monitor != nil {
		r.Monitor.apply(l, "monitor.", &c.Monitor)
	}
	for _, rp := range r.Profiles {
		field := blockPath("", "profile", rp.Class)
		class, err := edgesync.ParseLinkClass(rp.Class)
		if err != nil {
			l.add(field, err)
			continue
		}
		if _, dup := c.Profiles[class]; dup {
			l.addf(field, "profile %q is defined twice", rp.Class)
		}
		c.Profiles[class] = rp.apply(l, field+".")
	}
	for _, re := range r.Endpoints {
		p := blockPath("", "endpoint", re.Name)
		e := Endpoint{Name: re.Name, Monitor: c.Monitor}
		e.Address = pick(re.Address, "")
		re.applyAddresses(l, p, &e)
		e.ServerName = pick(re.ServerName, "")
		if re.Monitor != nil {
			re.Monitor.apply(l, p+".monitor.", &e.Monitor)
		}
		if re.Budget != nil {
			e.Budget = re.Budget.apply(l, p+".budget.")
		}
		c.Endpoints = append(c.Endpoints, e)
	}
	if ct := r.Control; ct != nil {
		c.Control.Socket = pick(ct.Socket, c.Control.Socket)
		c.Control.TCP = pick(ct.TCP, c.Control.TCP)
		c.Control.TokenFile = pick(ct.TokenFile, c.Control.TokenFile)
		c.Control.MaxBodyBytes = parseSize(l, "control.max_body_bytes", ct.MaxBodyBytes, c.Control.MaxBodyBytes)
	}
	if r.Metrics != nil {
		c.Metrics.Listen = pick(r.Metrics.Listen, c.Metrics.Listen)
	}
}

func (r *rawLog) apply(g *Log) {
	g.Level = pick(r.Level, g.Level)
	g.Format = pick(r.Format, g.Format)
}

func (r *rawTLS) apply(t *TLS) {
	t.CA = pick(r.CA, t.CA)
	t.Cert = pick(r.Cert, t.Cert)
	t.Key = pick(r.Key, t.Key)
}

// apply reads the monitor block onto m, converting the file's Mbit/s and
// percent into linkmon's bit/s and fractions: the one place they are
// converted.
func (r *rawMonitor) apply(l *errorList, p string, m *Monitor) {
	c := &m.Classifier
	m.ProbeInterval = parseDuration(l, p+"probe_interval", r.ProbeInterval, m.ProbeInterval)
	m.SampleInterval = parseDuration(l, p+"sample_interval", r.SampleInterval, m.SampleInterval)
	c.Window = parseDuration(l, p+"window", r.Window, c.Window)
	c.LossWindow = parseDuration(l, p+"loss_window", r.LossWindow, c.LossWindow)
	m.ProbeTimeout = parseDuration(l, p+"probe_timeout", r.ProbeTimeout, m.ProbeTimeout)
	c.MinSamples = pick(r.MinSamples, c.MinSamples)
	c.Hysteresis = fromPercent(r.HysteresisPercent, c.Hysteresis)
	m.Budget.Fraction = fromPercent(r.ProbeBudgetPct, m.Budget.Fraction)
	m.Active = pick(r.Active, m.Active)
	m.Passive = pick(r.Passive, m.Passive)
	m.IdleAfter = parseDuration(l, p+"idle_after", r.IdleAfter, m.IdleAfter)
	m.IdleSampleInterval = parseDuration(l, p+"idle_sample_interval", r.IdleSample, m.IdleSampleInterval)
	m.IdleProbeInterval = parseDuration(l, p+"idle_probe_interval", r.IdleProbe, m.IdleProbeInterval)
	if t := r.Thresholds; t != nil {
		tp := p + "thresholds."
		c.FiberMinBps = fromMbps(t.FiberMinMbps, c.FiberMinBps)
		c.BroadbandMinBps = fromMbps(t.BroadbandMinMbps, c.BroadbandMinBps)
		c.MobileMinBps = fromMbps(t.MobileMinMbps, c.MobileMinBps)
		c.FiberMaxRTT = parseDuration(l, tp+"fiber_max_rtt", t.FiberMaxRTT, c.FiberMaxRTT)
		c.BroadbandMaxRTT = parseDuration(l, tp+"broadband_max_rtt", t.BroadbandMaxRTT, c.BroadbandMaxRTT)
		c.MobileMaxRTT = parseDuration(l, tp+"mobile_max_rtt", t.MobileMaxRTT, c.MobileMaxRTT)
		c.SatelliteMinRTT = parseDuration(l, tp+"satellite_min_rtt", t.SatelliteMinRTT, c.SatelliteMinRTT)
		c.IntermittentLoss = fromPercent(t.IntermittentLossPct, c.IntermittentLoss)
		c.MaxMissed = pick(t.MaxMissed, c.MaxMissed)
	}
}

// fromPercent returns *v percent as a fraction, or def when v was not
// written.
func fromPercent(v *float64, def float64) float64 {
	if v == nil {
		return def
	}
	return *v / percent
}

// fromMbps returns *v Mbit/s in bit/s, or def when v was not written.
func fromMbps(v *float64, def float64) float64 {
	if v == nil {
		return def
	}
	return *v * bpsPerMbps
}

func (r *rawProfile) apply(l *errorList, p string) Profile {
	var out Profile
	if r.Mode != nil {
		m, err := edgesync.ParseSyncMode(*r.Mode)
		if err != nil {
			l.add(p+"mode", err)
		}
		out.Mode = m
	}
	out.Compression = r.Compression
	out.Level = pick(r.Level, "")
	out.ChunkSize = parseSize(l, p+"chunk", r.Chunk, 0)
	if r.Interval != nil {
		d := parseDuration(l, p+"interval", r.Interval, 0)
		out.Interval = &d
	}
	out.Concurrency = pick(r.Concurrency, 0)
	out.SummaryOnly = r.SummaryOnly
	out.SummaryPriorities = parseSummaryPriorities(l, p+"summary_priorities", r.Summaries)
	return out
}
