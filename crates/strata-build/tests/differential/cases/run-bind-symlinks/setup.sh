# Bind-mount sources that are symlinks: resolved inside the context (a link to /etc is the
# context's etc), `rw` writes discarded, stage links resolved inside the stage.
mkdir -p sub etc; echo ctx > sub/f; echo context-hostname > etc/hostname
ln -s /etc etclink; ln -s sub rel; ln -s ../../.. up
