package gui

import (
	"context"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

// networkAPI is what the Settings tab needs to share and join networks:
// control.Client's Invite (GET /api/invite) and Join (POST /api/join),
// both behind the control token.
type networkAPI interface {
	Invite(ctx context.Context) (string, error)
	Join(ctx context.Context, code string) (string, error)
}

// networkBox shows this network's invite code on request and joins another
// network from a pasted code.
type networkBox struct {
	api          networkAPI
	code         *widget.Entry
	show, copyIt *widget.Button
	paste        *widget.Entry
	join         *widget.Button
	msg, err     *widget.Label
	content      fyne.CanvasObject
}

func newNetworkBox(api networkAPI) *networkBox {
	n := &networkBox{api: api, code: widget.NewEntry(), paste: widget.NewEntry(), msg: wrapped(""), err: errLabel()}
	n.code.Disable() // shown, selectable, not edited
	n.code.SetPlaceHolder("the code holds this network's secret: share it only with new members")
	n.show = widget.NewButton("Show invite code", func() { n.showInvite(context.Background()) })
	n.copyIt = widget.NewButton("Copy", func() {
		if app := fyne.CurrentApp(); app != nil && n.code.Text != "" {
			app.Clipboard().SetContent(n.code.Text)
			n.msg.SetText("Invite code copied.")
		}
	})
	n.paste.SetPlaceHolder("paste an invite code to join that network")
	n.join = widget.NewButton("Join", func() { n.joinNetwork(context.Background()) })
	n.content = container.NewVBox(
		container.NewBorder(nil, nil, nil, container.NewHBox(n.show, n.copyIt), n.code),
		container.NewBorder(nil, nil, nil, n.join, n.paste),
		n.err, n.msg)
	return n
}

func (n *networkBox) showInvite(ctx context.Context) {
	n.err.SetText("")
	var code string
	var err error
	inBackground(n.show, n.msg, "Asking the node…", func() { code, err = n.api.Invite(ctx) }, func() {
		n.msg.SetText("")
		if err != nil {
			n.err.SetText("Cannot get the invite code: " + err.Error())
			return
		}
		n.code.SetText(code)
	})
}

func (n *networkBox) joinNetwork(ctx context.Context) {
	n.err.SetText("")
	n.msg.SetText("")
	code := strings.TrimSpace(n.paste.Text)
	if code == "" {
		n.err.SetText("Paste an invite code first.")
		return
	}
	var answer string
	var err error
	inBackground(n.join, n.msg, "Joining…", func() { answer, err = n.api.Join(ctx, code) }, func() {
		n.msg.SetText("")
		switch {
		case noAnswer(err):
			n.err.SetText(noAnswerText + err.Error())
		case err != nil:
			n.err.SetText("Not joined: " + err.Error())
		default:
			n.paste.SetText("")
			n.msg.SetText(answer)
		}
	})
}
