"""Many hosts at once, on Ansible (through ansible-runner): the inventory users already keep, our checks judging what
Ansible gathers from each host. Ansible is an optional extra (``pip install 'cai-tui[fleet]'``); nothing here imports
it before :func:`cai_tui.fleet.ansible.require_ansible` says it is there."""
