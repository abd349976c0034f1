-- A minimal init.lua that only sets up salience: nvim -u client-config/neovim/init.lua examples/door-codes.prompt
local here = vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2))
vim.o.termguicolors = true
dofile(here .. '/salience.lua')
