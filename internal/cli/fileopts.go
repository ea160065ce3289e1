package cli

import "github.com/spf13/cobra"

// fileOpts are the flags of a tool that works on a stopped process's file
// (outbox verify and salvage, core verify and salvage): the process's
// config, which names the file, or the file itself; and --json.
type fileOpts struct {
	cfgPath, file string
	json          bool
}

// register adds the flags to sc, with configHelp and fileHelp as the
// help of --config and --file.
func (o *fileOpts) register(sc *cobra.Command, configHelp, fileHelp string) {
	sc.Flags().StringVar(&o.cfgPath, "config", "", configHelp)
	sc.Flags().StringVar(&o.file, "file", "", fileHelp)
	sc.Flags().BoolVar(&o.json, "json", false, "print the report as JSON")
	completeFlag(sc, "config", hclFiles)
}

// check refuses neither or both of --config and --file, with want (what
// each names) in the usage error of the command name.
func (o *fileOpts) check(name, want string) error {
	if (o.cfgPath == "") == (o.file == "") {
		return usagef(name, "give %s", want)
	}
	return nil
}
