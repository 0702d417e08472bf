"""offices"""
