package cli

import (
	"github.com/spf13/cobra"
)

const completionLong = `Prints the script that makes the shell complete edge-sync's commands,
flags, ctl's command names, priorities, link classes, sync modes and pins,
and the endpoints of the running agent (asked through its control socket).`

const completionExample = `  source <(edge-sync completion bash)                  # this shell
  edge-sync completion bash > /etc/bash_completion.d/edge-sync
  edge-sync completion zsh > "${fpath[1]}/_edge-sync"
  edge-sync completion fish > ~/.config/fish/completions/edge-sync.fish`

func newCompletionCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:       "completion bash|zsh|fish",
		Long:      completionLong,
		Example:   completionExample,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("completion", "want one shell: bash, zsh or fish")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			root := c.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(env.Stdout, true)
			case "zsh":
				return root.GenZshCompletion(env.Stdout)
			case "fish":
				return root.GenFishCompletion(env.Stdout, true)
			}
			return usagef("completion", "unknown shell %q (want bash, zsh or fish)", args[0])
		},
	}
}
