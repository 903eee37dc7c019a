{
  description = "PhotonCloud development shell";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            # Python 3.11 with pip; venv is part of the standard library. `make run` creates
            # .venv and installs grpcio, grpcio-tools and the rest from constraints.txt.
            (pkgs.python311.withPackages (ps: [ ps.pip ]))
            pkgs.gnumake
            pkgs.sqlite
            pkgs.curl
            pkgs.jq
            pkgs.docker-compose
            pkgs.etcd_3_4  # etcdctl for the tests of ChainFire's etcd API, etcd for bench/
            pkgs.qemu      # PlasmaVMC's hypervisor
          ];

          # Wheels from the package index (grpcio, grpcio-tools) link against libstdc++ and
          # zlib, which are not on the default library path of a Nix system.
          LD_LIBRARY_PATH = pkgs.lib.optionalString pkgs.stdenv.isLinux
            (pkgs.lib.makeLibraryPath [ pkgs.stdenv.cc.cc.lib pkgs.zlib ]);

          shellHook = ''
            export PIP_DISABLE_PIP_VERSION_CHECK=1
            echo "PhotonCloud dev shell: $(python3 --version); 'make run', 'make test', 'make health'"
          '';
        };
      });
    };
}
